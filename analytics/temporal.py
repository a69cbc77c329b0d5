"""A DATE column with declared bounds, so dates can be grouped by year, quarter or month.

``flai.datasets.schema`` declares numeric and categorical columns; federated SQL also needs
dates (TPC-H, admissions, transactions). ``Temporal`` has the same shape as ``Numeric``
(name, bounds, null fraction) and is meant to move into ``flai.datasets.schema`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Temporal:
    """A DATE column whose values are declared to lie in ``[low, high]``."""

    name: str
    low: date
    high: date
    max_null_fraction: float = 0.0
