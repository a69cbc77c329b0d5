"""Prefect tasks: one step each, thin, safe to retry."""
