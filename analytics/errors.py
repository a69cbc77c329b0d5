"""The one error the planner raises: a query the federation will not run."""

from __future__ import annotations


class QueryRefused(ValueError):
    """Refused before anything runs; ``reason`` says why, in the analyst's terms.

    >>> QueryRefused("SELECT * would reveal rows").reason
    'SELECT * would reveal rows'
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
