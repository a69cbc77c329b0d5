"""The shapes the parties of a federated query agree on, and the vectors that flow between them.

Shared by the planner (``analytics``), each provider's engine (``flai.sql_engine``) and the
secure combination (``flai.mpc.secure_combine``), and importing nothing heavier than numpy,
so that planning a query loads neither torch nor DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PartialQuery:
    """One SQL query; its result columns are ``_cell`` (``_bin`` if binned), then values.

    The value columns go, in order, to sums columns ``sum_columns`` (offset by ``_bin`` when
    ``binned``), then MIN slots ``min_columns``, then MAX slots ``max_columns``.
    """

    sql: str
    sum_columns: tuple[int, ...]
    min_columns: tuple[int, ...] = ()
    max_columns: tuple[int, ...] = ()
    binned: bool = False


@dataclass(frozen=True)
class PartialPlan:
    """Everything a provider needs to compute its partial aggregates for one query."""

    table: str
    cells: int
    sum_width: int
    min_neutral: tuple[float, ...]  # a MIN slot's value where the provider has none
    max_neutral: tuple[float, ...]
    queries: tuple[PartialQuery, ...]


@dataclass(frozen=True)
class PartialVectors:
    """One provider's partial aggregates over the whole declared group domain. Only for MPC."""

    sums: np.ndarray  # [cells, sum_width] float64
    mins: np.ndarray  # [cells, A]; the slot's upper bound where the provider has no value
    maxs: np.ndarray  # [cells, B]; the slot's lower bound where the provider has no value


@dataclass(frozen=True)
class CombineSpec:
    """What every party agrees on before a combination: shapes, scaling, k, noise, digest."""

    cells: int
    sum_width: int
    sum_scale: tuple[float, ...]  # r_j, powers of two
    minima: int  # MIN slots per group
    maxima: int  # MAX slots per group
    min_group_size: int
    max_rows: int  # the total row count the ring scaling was chosen for
    supports: tuple[int, ...] = ()  # per sums column, the count column feeding it; (): COUNT(*)
    extremum_scale: tuple[float, ...] = ()  # e per MIN then MAX slot; (): 1
    sum_noise: tuple[float, ...] | None = None  # total sigma per sums column; None: no DP
    digest: bytes = bytes(32)  # of the plan this spec belongs to

    @property
    def extrema(self) -> int:
        return self.minima + self.maxima

    @property
    def column_supports(self) -> tuple[int, ...]:
        return self.supports or (0,) * self.sum_width

    @property
    def gates(self) -> tuple[int, ...]:
        """The support columns tested against ``min_group_size``, COUNT(*) first."""
        return (0, *sorted(set(self.column_supports) - {0}))

    @property
    def extremum_scales(self) -> np.ndarray:
        return np.asarray(self.extremum_scale or (1.0,) * self.extrema, dtype=np.float64)


@dataclass(frozen=True)
class CombinedVectors:
    """What rank 0 learns: totals of released groups and columns (zeros elsewhere), and which
    groups (``released``) and columns of them (``columns_released``) were released."""

    sums: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    released: np.ndarray  # bool per cell
    columns_released: np.ndarray  # bool per cell and sums column

    @property
    def suppressed(self) -> int:
        """Cells not released: below the group-size threshold, empty ones included."""
        return int((~self.released).sum())
