"""Each supported aggregate as additive per-group components, and its value from their totals.

A group's components are sums that combine across providers by plain addition (counts, sums,
centred sums of squares and cross products, histogram bins) plus MIN/MAX slots that combine
by secure comparison. ``plan_aggregate`` registers what an aggregate needs in a ``Layout``;
``evaluate`` computes the aggregate from the combined totals of the released groups.

Every additive column has a *support*: the count column of the rows that feed it (rows where
its argument is not NULL, or, under exact release, not zero). A column is released only
where its support reaches the policy's minimum group size, so an aggregate that one row
alone feeds is never released, however large its group.

Under differential privacy MIN and MAX never come from a single row: they are read off the
noisy histogram of their argument, as the outer edge of the outermost bin whose noisy count
clears ``threshold`` (three standard deviations of a bin's noise), so they are bin edges, a
public grid, off by at most a bin width plus however far the sparse tail reaches, and NULL
where no bin is populated enough to stand out of the noise.

Second moments are centred on a public constant ``c`` (the midpoint of the declared bounds):
``var_pop = q/n - (s/n - c)**2`` with ``q = sum((x - c)**2)``, ``s = sum(x)``, ``n = count(x)``,
which keeps the one-pass formula well conditioned and the fixed-point totals small.
Approximate quantiles come from a histogram of ``B`` equal bins over ``[low, high]``: the
``j``-th order statistic is placed inside its bin at ``low + (b + (j - C_b + 1/2) / h_b) * w``
(``C_b`` rows below bin ``b``, ``h_b`` in it, width ``w``), so it is off by less than ``w``;
``quantile_cont`` interpolates two such estimates, so its error is also below ``w``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pyarrow as pa
from sqlglot import exp

from analytics.check_types import MAX_MAGNITUDE
from analytics.domains import sql_literal
from analytics.errors import QueryRefused
from analytics.intervals import Interval, interval_of, may_be_null
from flai.datasets.policy import Release
from flai.datasets.schema import TabularSchema
from flai.query_types import CombinedVectors


class Kind(Enum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    VAR_POP = "var_pop"
    VAR_SAMP = "var_samp"
    STDDEV_POP = "stddev_pop"
    STDDEV_SAMP = "stddev_samp"
    COVAR_POP = "covar_pop"
    COVAR_SAMP = "covar_samp"
    CORR = "corr"
    MIN = "min"
    MAX = "max"
    QUANTILE = "quantile"


_KINDS: dict[type, Kind] = {
    exp.Count: Kind.COUNT, exp.Sum: Kind.SUM, exp.Avg: Kind.AVG,
    exp.VariancePop: Kind.VAR_POP, exp.Variance: Kind.VAR_SAMP,
    exp.StddevPop: Kind.STDDEV_POP, exp.Stddev: Kind.STDDEV_SAMP, exp.StddevSamp: Kind.STDDEV_SAMP,
    exp.CovarPop: Kind.COVAR_POP, exp.CovarSamp: Kind.COVAR_SAMP, exp.Corr: Kind.CORR,
    exp.Min: Kind.MIN, exp.Max: Kind.MAX, exp.Median: Kind.QUANTILE, exp.PercentileCont: Kind.QUANTILE,
}


def kind_of(node: exp.AggFunc) -> Kind:
    return _KINDS[type(node)]


@dataclass(frozen=True)
class Histogram:
    """``count`` equal bins over ``[low, low + count * width]``, at sums columns ``offset..``."""

    argument: str
    low: float
    width: float
    count: int
    offset: int


@dataclass(frozen=True)
class Extremum:
    """A MIN or MAX slot: ``neutral`` stands in where a provider has no value."""

    sql: str
    neutral: float
    magnitude: float  # the largest |value|, which sets the slot's fixed-point scale


@dataclass
class Layout:
    """The columns of one group's sums row, and its MIN/MAX slots, in registration order.

    ``supports[j]`` is the count column of the rows feeding column ``j``.
    """

    sums: list[tuple[str, float]] = field(default_factory=lambda: [("COUNT(*)", 1.0)])
    supports: list[int] = field(default_factory=lambda: [0])
    histograms: list[Histogram] = field(default_factory=list)
    mins: list[Extremum] = field(default_factory=list)
    maxs: list[Extremum] = field(default_factory=list)

    def column(self, sql: str, bound: float, support: int | None = None) -> int:
        """The index of the additive component ``sql`` (one row moves it by <= ``bound``),
        fed by the rows counted in column ``support`` (None: a count, its own support)."""
        for index, (existing, _) in enumerate(self.sums):
            if existing == sql:
                return index
        self.sums.append((sql, bound))
        self.supports.append(len(self.sums) - 1 if support is None else support)
        return len(self.sums) - 1

    def histogram(self, argument: str, interval: Interval, bins: int, support: int) -> Histogram:
        for histogram in self.histograms:
            if histogram.argument == argument:
                return histogram
        offset = len(self.sums)
        self.sums += [(f"{argument} bin {b}", 1.0) for b in range(bins)]
        self.supports += [support] * bins
        histogram = Histogram(argument, interval.low, (interval.high - interval.low) / bins,
                              bins, offset)
        self.histograms.append(histogram)
        return histogram

    def extremum(self, slots: list[Extremum], slot: Extremum) -> int:
        if slot not in slots:
            slots.append(slot)
        return slots.index(slot)

    @property
    def histogram_columns(self) -> set[int]:
        return {h.offset + b for h in self.histograms for b in range(h.count)}


@dataclass(frozen=True)
class AggregateSpec:
    """How one aggregate of the query is computed from the combined totals."""

    kind: Kind
    columns: tuple[int, ...]
    centre: tuple[float, ...] = ()
    extremum: int = -1
    quantile: float = 0.5
    histogram: Histogram | None = None
    threshold: float = 0.0  # a histogram bin counts toward a DP MIN/MAX from this count on


def plan_aggregate(node: exp.AggFunc, schema: TabularSchema, layout: Layout, bins: int,
                   release: Release) -> AggregateSpec:
    """Register the components ``node`` needs under ``release``; return how to evaluate it."""
    kind = kind_of(node)
    if kind is Kind.COUNT:
        if isinstance(node.this, exp.Star) or not may_be_null(node.this, schema):
            return AggregateSpec(kind, (0,))
        return AggregateSpec(kind, (layout.column(f"COUNT({_sql(node.this)})", 1.0),))
    x = node.this
    bounds = _bounded(x, schema)
    n = _count(x, schema, layout)
    if kind is Kind.AVG and release is Release.DIFFERENTIAL_PRIVACY:
        # Centred on the range's midpoint, one row moves the sum by at most the half-width,
        # not max|x|: less noise for the same epsilon (age in [18, 100]: 41, not 100).
        c = bounds.midpoint
        s = layout.column(f"SUM({_sql(x)} - {sql_literal(c)})", bounds.half_width, n)
        return AggregateSpec(kind, (n, s), (c,))
    if kind in (Kind.SUM, Kind.AVG):
        support = n
        if release is Release.EXACT_COUNTS_AND_SUMS:  # rows that move the sum: non-zero ones
            support = layout.column(f"COUNT(*) FILTER (WHERE ({_sql(x)}) <> 0)", 1.0)
        return AggregateSpec(kind, (n, layout.column(f"SUM({_sql(x)})", bounds.magnitude, support)))
    if kind in (Kind.VAR_POP, Kind.VAR_SAMP, Kind.STDDEV_POP, Kind.STDDEV_SAMP):
        c = bounds.midpoint
        s = layout.column(f"SUM({_sql(x)})", bounds.magnitude, n)
        q = layout.column(f"SUM(({_sql(x)} - {sql_literal(c)}) * ({_sql(x)} - {sql_literal(c)}))",
                          bounds.half_width**2, n)
        return AggregateSpec(kind, (n, s, q), (c,))
    if kind in (Kind.COVAR_POP, Kind.COVAR_SAMP, Kind.CORR):
        return _pair(kind, node, schema, layout)
    if kind in (Kind.MIN, Kind.MAX) and release is not Release.DIFFERENTIAL_PRIVACY:
        slots = layout.mins if kind is Kind.MIN else layout.maxs
        neutral = bounds.high if kind is Kind.MIN else bounds.low
        slot = Extremum(f"{kind.name}({_sql(x)})", neutral, bounds.magnitude)
        return AggregateSpec(kind, (n,), extremum=layout.extremum(slots, slot))
    if bounds.high <= bounds.low:
        raise QueryRefused(f"{node.sql('duckdb')}: the declared range of the argument is empty")
    quantile = float(node.expression.this) if isinstance(node, exp.PercentileCont) else 0.5
    histogram = layout.histogram(_sql(x), bounds, bins, n)
    return AggregateSpec(kind, (n,), quantile=quantile, histogram=histogram)


def _sql(node: exp.Expression) -> str:
    return node.sql("duckdb")


def _bounded(x: exp.Expression, schema: TabularSchema) -> Interval:
    bounds = interval_of(x, schema)
    if bounds.empty:
        raise QueryRefused(f"{_sql(x)} is always NULL")
    if not (math.isfinite(bounds.low) and math.isfinite(bounds.high)):
        raise QueryRefused(f"{_sql(x)} has no finite bound")
    if bounds.magnitude > MAX_MAGNITUDE:
        raise QueryRefused(f"{_sql(x)} may reach {bounds.magnitude:.3g}; values beyond "
                           f"{MAX_MAGNITUDE:g} are not supported")
    return bounds


def _count(x: exp.Expression, schema: TabularSchema, layout: Layout) -> int:
    return layout.column(f"COUNT({_sql(x)})", 1.0) if may_be_null(x, schema) else 0


def _pair(kind: Kind, node: exp.AggFunc, schema: TabularSchema, layout: Layout) -> AggregateSpec:
    """Components over the rows where both arguments are non-NULL, as DuckDB's covar/corr use."""
    y, x = node.this, node.expression  # COVAR_POP(y, x)
    by, bx = _bounded(y, schema), _bounded(x, schema)
    cy, cx = by.midpoint, bx.midpoint
    both_present = may_be_null(x, schema) or may_be_null(y, schema)
    where = f" FILTER (WHERE {_sql(x)} IS NOT NULL AND {_sql(y)} IS NOT NULL)" if both_present else ""

    n = layout.column(f"COUNT(*){where}", 1.0) if both_present else 0

    def total(body: str, bound: float) -> int:
        return layout.column(f"SUM({body}){where}", bound, n)

    columns = [n, total(_sql(y), by.magnitude), total(_sql(x), bx.magnitude),
               total(f"({_sql(y)} - {sql_literal(cy)}) * ({_sql(x)} - {sql_literal(cx)})",
                     by.half_width * bx.half_width)]
    if kind is Kind.CORR:
        columns += [total(f"({_sql(y)} - {sql_literal(cy)}) * ({_sql(y)} - {sql_literal(cy)})",
                          by.half_width**2),
                    total(f"({_sql(x)} - {sql_literal(cx)}) * ({_sql(x)} - {sql_literal(cx)})",
                          bx.half_width**2)]
    return AggregateSpec(kind, tuple(columns), (cy, cx))


def evaluate(spec: AggregateSpec, combined: CombinedVectors, cells: np.ndarray) -> pa.Array:
    """The aggregate's value in each of ``cells`` (released groups); NULL where SQL has NULL
    and where a column it needs was withheld (too few rows feed it)."""
    sums = combined.sums[cells]
    n = sums[:, spec.columns[0]]
    columns = list(spec.columns)
    if spec.histogram is not None:
        columns += range(spec.histogram.offset, spec.histogram.offset + spec.histogram.count)
    released = combined.columns_released[np.ix_(cells, columns)].all(axis=1)
    if spec.kind is Kind.COUNT:
        return pa.array(np.rint(np.maximum(n, 0)).astype(np.int64), mask=~released)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.asarray(_EVALUATE[spec.kind](spec, sums, n, combined.mins[cells],
                                                 combined.maxs[cells]), dtype=np.float64)
    present = released & (n >= (1.5 if spec.kind in _SAMPLE_KINDS else 0.5))
    return pa.array(values, mask=~present | ~np.isfinite(values))


_SAMPLE_KINDS = {Kind.VAR_SAMP, Kind.STDDEV_SAMP, Kind.COVAR_SAMP}


def _moments(spec: AggregateSpec, sums: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(population variance, n) of one argument; clamped at 0 against noise and rounding."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums[:, spec.columns[1]] / n - spec.centre[0]
        return np.maximum(sums[:, spec.columns[2]] / n - mean**2, 0.0), n


def _covariance(spec: AggregateSpec, sums: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        my = sums[:, spec.columns[1]] / n - spec.centre[0]
        mx = sums[:, spec.columns[2]] / n - spec.centre[1]
        return sums[:, spec.columns[3]] / n - my * mx


def _corr(spec: AggregateSpec, sums: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        my = sums[:, spec.columns[1]] / n - spec.centre[0]
        mx = sums[:, spec.columns[2]] / n - spec.centre[1]
        vy = np.maximum(sums[:, spec.columns[4]] / n - my**2, 0.0)
        vx = np.maximum(sums[:, spec.columns[5]] / n - mx**2, 0.0)
        return np.clip(_covariance(spec, sums, n) / np.sqrt(vx * vy), -1.0, 1.0)


def _sample(population: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return population * n / (n - 1)


def _quantile(spec: AggregateSpec, sums: np.ndarray) -> np.ndarray:
    histogram = spec.histogram
    counts = np.maximum(sums[:, histogram.offset:histogram.offset + histogram.count], 0.0)
    if spec.kind in (Kind.MIN, Kind.MAX):
        return np.array([_histogram_edge(row, spec.kind, spec.threshold, histogram) for row in counts])
    return np.array([_histogram_quantile(row, spec.quantile, histogram) for row in counts])


def _histogram_edge(counts: np.ndarray, kind: Kind, threshold: float, histogram: Histogram) -> float:
    """The low edge of the first (MIN) or high edge of the last (MAX) bin over ``threshold``."""
    occupied = np.flatnonzero(counts >= max(threshold, 0.5))
    if occupied.size == 0:
        return math.nan
    if kind is Kind.MIN:
        return histogram.low + occupied[0] * histogram.width
    return histogram.low + (occupied[-1] + 1) * histogram.width


def _histogram_quantile(counts: np.ndarray, q: float, histogram: Histogram) -> float:
    total = counts.sum()
    if total < 0.5:
        return math.nan
    cumulative = np.cumsum(counts)

    def order_statistic(rank: float) -> float:
        b = min(int(np.searchsorted(cumulative, rank, side="right")), histogram.count - 1)
        inside = (rank - (cumulative[b] - counts[b]) + 0.5) / max(counts[b], 1e-12)
        return histogram.low + (b + min(inside, 1.0)) * histogram.width

    position = q * (round(total) - 1)
    below, fraction = math.floor(position), position - math.floor(position)
    low = order_statistic(below)
    return low + fraction * (order_statistic(below + 1) - low) if fraction else low


_Evaluate = Callable[[AggregateSpec, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_EVALUATE: dict[Kind, _Evaluate] = {
    Kind.SUM: lambda s, sums, n, mins, maxs: sums[:, s.columns[1]],
    Kind.AVG: lambda s, sums, n, mins, maxs: sums[:, s.columns[1]] / n + (s.centre[0] if s.centre else 0.0),
    Kind.VAR_POP: lambda s, sums, n, mins, maxs: _moments(s, sums, n)[0],
    Kind.VAR_SAMP: lambda s, sums, n, mins, maxs: _sample(_moments(s, sums, n)[0], n),
    Kind.STDDEV_POP: lambda s, sums, n, mins, maxs: np.sqrt(_moments(s, sums, n)[0]),
    Kind.STDDEV_SAMP: lambda s, sums, n, mins, maxs: np.sqrt(_sample(_moments(s, sums, n)[0], n)),
    Kind.COVAR_POP: lambda s, sums, n, mins, maxs: _covariance(s, sums, n),
    Kind.COVAR_SAMP: lambda s, sums, n, mins, maxs: _sample(_covariance(s, sums, n), n),
    Kind.CORR: lambda s, sums, n, mins, maxs: _corr(s, sums, n),
    Kind.MIN: lambda s, sums, n, mins, maxs: (mins[:, s.extremum] if s.histogram is None
                                              else _quantile(s, sums)),
    Kind.MAX: lambda s, sums, n, mins, maxs: (maxs[:, s.extremum] if s.histogram is None
                                              else _quantile(s, sums)),
    Kind.QUANTILE: lambda s, sums, n, mins, maxs: _quantile(s, sums),
}
