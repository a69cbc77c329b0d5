"""A data set's disclosure policy: what its owners let federated SQL release, and how.

The policy is part of the data set's registration, like its schema: its digest is recorded
on chain, every provider holds its own copy and enforces it on every query, and nothing an
analyst sets (flags, environment, data directory, deployment parameters) can lower it. The
knobs follow SmartNoise SQL and SCQL's column control list: which columns may be filtered,
grouped or aggregated, which aggregates may be asked for, the minimum group size, the release
mode (differential privacy unless the owners declare the data non-personal), the per-query
epsilon range and the total budget.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum


class Release(str, Enum):
    """How aggregates are released."""

    DIFFERENTIAL_PRIVACY = "differential-privacy"  # every value noised; the default
    EXACT_COUNTS_AND_SUMS = "exact-counts-and-sums"  # exact, counts and sums only
    EXACT = "exact"  # synthetic or public data (benchmarks): every aggregate exact


class Aggregate(str, Enum):
    """The aggregate families a policy can allow."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    VARIANCE = "variance"  # VAR_POP/VAR_SAMP/STDDEV_*
    COVARIANCE = "covariance"  # COVAR_POP/COVAR_SAMP/CORR
    MIN_MAX = "min-max"
    QUANTILE = "quantile"  # MEDIAN, QUANTILE_CONT


EXACT_ALLOWED = frozenset({Aggregate.COUNT, Aggregate.SUM, Aggregate.AVG})


@dataclass(frozen=True)
class ColumnUse:
    """Where a column may appear: WHERE, GROUP BY, inside an aggregate."""

    name: str
    filter: bool = True
    group: bool = True
    aggregate: bool = True


@dataclass(frozen=True)
class DisclosurePolicy:
    """What the owners of one data set allow federated SQL to release.

    Privacy unit: one row is one person (true of the registered data sets; a data set with
    several rows per person must say so and bound them before it registers). Neighbouring
    data sets differ by adding or removing one row.

    ``columns`` lists restricted columns; a column not listed may be used everywhere.
    ``min_group_size`` applies to the (noisy) number of rows feeding each aggregate of a
    group. ``epsilon`` is the default per query, ``epsilon_range`` what an analyst may ask
    for; every query is ``(epsilon, delta)``-DP, and the total ``(budget_epsilon,
    budget_delta)`` bounds all queries together under Renyi-DP composition.
    ``max_cells`` bounds the GROUP BY domain and ``quantile_bins`` the resolution of
    histogram-based MIN/MAX and quantiles.

    >>> DisclosurePolicy().digest[:12]
    '5e9f01f02ef5'
    """

    release: Release = Release.DIFFERENTIAL_PRIVACY
    min_group_size: int = 10
    epsilon: float = 1.0
    epsilon_range: tuple[float, float] = (0.1, 2.0)
    delta: float = 1e-6
    budget_epsilon: float = 10.0
    budget_delta: float = 1e-5
    aggregates: frozenset[Aggregate] = frozenset(Aggregate)
    columns: tuple[ColumnUse, ...] = ()
    max_cells: int = 10_000
    quantile_bins: int = 64
    max_rows: int = 2**30
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        low, high = self.epsilon_range
        if not (0 < low <= self.epsilon <= high and 0 < self.delta < 1
                and 0 < self.budget_delta < 1 and self.budget_epsilon > 0
                and self.min_group_size >= 1 and self.quantile_bins >= 2):
            raise ValueError(f"inconsistent disclosure policy: {self}")
        if (self.release is Release.EXACT_COUNTS_AND_SUMS
                and not self.aggregates <= EXACT_ALLOWED):
            raise ValueError("exact release is limited to COUNT, SUM and AVG")

    def use(self, column: str) -> ColumnUse:
        """How ``column`` may be used (unrestricted unless listed)."""
        return next((use for use in self.columns if use.name == column), ColumnUse(column))

    @property
    def dp_mandatory(self) -> bool:
        return self.release is Release.DIFFERENTIAL_PRIVACY

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: what the chain and every provider compare."""
        document = asdict(self)
        document.pop("note")
        document["aggregates"] = sorted(a.value for a in self.aggregates)
        document["release"] = self.release.value
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
