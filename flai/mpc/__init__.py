"""MPC protocols over CrypTen. Pure protocol code: no Ray, Prefect or web3 here.

Every function assumes the calling process is one party of an initialised CrypTen session
(see ``flai.mpc.session``) and that every party calls it in the same order.
"""
