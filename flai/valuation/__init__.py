"""Contribution valuation: what each provider's update was worth to a round.

Pure algorithms (``shapley``) over coalition utilities (``utility``); the utilities are
computed in the clear here for reference and on secret shares by
``flai.mpc.secure_utilities``.
"""
