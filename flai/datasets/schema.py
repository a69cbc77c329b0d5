"""What a federation declares about a data set, once, for every layer that needs it.

Training encodes features from it, the quality gate builds its expectations from it, and
federated SQL takes allowed columns, group domains and value bounds from it. The schema is
public: it describes columns, never rows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Numeric:
    """A numeric column whose values are declared to lie in ``[low, high]``.

    ``log`` marks heavy-tailed columns (money) that training scales as ``log1p``; ``integral``
    declares whole numbers (ages, counts, 0/1 labels), which federated SQL may group by.
    """

    name: str
    low: float
    high: float
    log: bool = False
    max_null_fraction: float = 0.0
    integral: bool = False


@dataclass(frozen=True)
class Categorical:
    """A column whose values come from a declared, public domain."""

    name: str
    domain: tuple[str, ...]
    max_null_fraction: float = 0.0


Column = Numeric | Categorical


@dataclass(frozen=True)
class TabularSchema:
    """A registered data set: the same table, with these columns, at every provider.

    ``label`` names a 0/1 integer column, the training target; it is also a column that
    analytics may aggregate. ``sensitive`` names the categorical column a trained model's
    fairness is measured across, its declared domain being the groups
    (``flai.learning.fairness``); None: the data set declares none.
    """

    name: str
    columns: tuple[Column, ...]
    label: str
    min_rows: int = 20
    sensitive: str | None = None

    @property
    def features(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.name != self.label)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)
