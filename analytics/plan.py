"""Plan a federated SQL query: check and rewrite it rule by rule, then compile the plan.

``RULES`` is the pipeline, applied in order; every rule is ``rule(expression, schema) ->
expression`` and either rewrites or raises ``QueryRefused``. The result is then held against
the data set's disclosure policy (``check_policy``). The compiled ``Plan`` holds what each
party needs: the providers' partial SQL (``plan.partials``), the agreed shape, scaling,
thresholds and noise of the secure combination (``plan.combine``), and what finalise needs
on rank 0. Planning is deterministic: every provider plans the analyst's SQL itself, under
its own copy of the policy, and the parties compare ``plan.digest`` before any share moves.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from analytics.aggregates import AggregateSpec, Kind, Layout, plan_aggregate
from analytics.check_aggregation import check_aggregation
from analytics.check_functions import check_functions
from analytics.check_policy import check_policy
from analytics.check_statement import check_statement
from analytics.check_types import check_types
from analytics.domains import Value, cell_count, domain_of
from analytics.errors import QueryRefused
from analytics.expand_group_by import expand_group_by
from analytics.finalise import final_query
from analytics.name_outputs import name_outputs
from analytics.partials import compile_partials
from analytics.qualify_columns import qualify_columns
from analytics.safe_casts import safe_casts
from flai.datasets.policy import DisclosurePolicy, Release
from flai.datasets.schema import TabularSchema
from flai.mpc.fixed_point import MAX_ABS
from flai.privacy_ledger import noise_multiplier
from flai.query_types import CombineSpec, PartialPlan

RULES = (
    check_functions,
    check_statement,
    qualify_columns,
    check_types,
    safe_casts,
    name_outputs,
    expand_group_by,
    check_aggregation,
)

EDGE_THRESHOLD_SIGMAS = 3.0  # a DP MIN/MAX bin must clear this many noise deviations


@dataclass(frozen=True)
class Plan:
    sql: str  # the analyst's query
    dataset: str
    rewritten: str  # after RULES
    domains: tuple[tuple[Value, ...], ...]  # per group key
    aggregates: tuple[AggregateSpec, ...]
    final_sql: str  # over the released groups
    partials: PartialPlan  # for each provider
    combine: CombineSpec  # for every party of the secure combination
    policy: DisclosurePolicy
    epsilon: float | None  # None: exact release (only where the policy allows it)
    error_bounds: tuple[tuple[str, float], ...]  # histogram output -> max |error| from binning
    count_noise_std: float | None

    @property
    def digest(self) -> str:
        """What every party of the combination must agree on (``combine.digest``)."""
        return self.combine.digest.hex()


def parse(sql: str) -> exp.Expression:
    """Exactly one statement, or ``QueryRefused``."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as error:
        raise QueryRefused(f"not valid SQL: {error.errors[0]['description'] if error.errors else error}")
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is accepted, got {len(statements)}")
    return statements[0]


def rewrite(sql: str, schema: TabularSchema) -> exp.Select:
    """``sql`` checked and rewritten by every rule of ``RULES``.

    >>> from flai.datasets.heart import SCHEMA
    >>> rewrite("SELECT sex, AVG(age) FROM heart GROUP BY 1", SCHEMA).sql("duckdb")
    'SELECT sex AS sex, AVG(age) AS "AVG(age)" FROM heart GROUP BY sex'
    """
    expression = parse(sql)
    for rule in RULES:
        expression = rule(expression, schema)
    return expression


def release_epsilon(policy: DisclosurePolicy, epsilon: float | None) -> float | None:
    """The epsilon a query runs at: the analyst's, within the policy's range, or its default.

    >>> release_epsilon(DisclosurePolicy(), None), release_epsilon(DisclosurePolicy(), 0.5)
    (1.0, 0.5)
    >>> release_epsilon(DisclosurePolicy(), float("nan"))
    Traceback (most recent call last):
    analytics.errors.QueryRefused: epsilon must be a number within [0.1, 2] by the data set's policy, not nan
    """
    if epsilon is None:
        return policy.epsilon if policy.dp_mandatory else None
    low, high = policy.epsilon_range
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and low <= epsilon <= high):
        raise QueryRefused(f"epsilon must be a number within [{low:g}, {high:g}] by the data "
                           f"set's policy, not {epsilon}")
    return float(epsilon)


def plan_query(sql: str, schema: TabularSchema, policy: DisclosurePolicy,
               epsilon: float | None = None) -> Plan:
    """Plan ``sql`` over ``schema`` under ``policy``; raise ``QueryRefused`` before anything runs.

    ``epsilon`` (None: the policy's default) must lie in the policy's range; without DP (only
    where the policy releases exactly) it is None.

    >>> from flai.datasets.heart import POLICY, SCHEMA
    >>> plan = plan_query("SELECT sex, COUNT(*) FROM heart GROUP BY sex", SCHEMA, POLICY)
    >>> plan.domains, plan.partials.cells, plan.combine.min_group_size, plan.epsilon
    ((('female', 'male'),), 2, 10, 1.0)
    """
    epsilon = release_epsilon(policy, epsilon)
    select = check_policy(rewrite(sql, schema), policy)
    group = select.args.get("group")
    keys = list(group.expressions) if group is not None else []
    domains = tuple(domain_of(key, schema) for key in keys)
    for key, domain in zip(keys, domains):
        if any(isinstance(v, float) and not v.is_integer() for v in domain):
            raise QueryRefused(f"GROUP BY {key.sql('duckdb')}: its values are not whole numbers; "
                               "bucket it with FLOOR(...)")
    cells = cell_count(domains)
    if cells > policy.max_cells:
        raise QueryRefused(f"the GROUP BY domain has {cells} cells, more than the "
                           f"{policy.max_cells} the data set's policy allows; use coarser buckets")
    nodes: list[exp.Expression] = []
    terms = [*select.expressions, select.args.get("having"), select.args.get("order")]
    for term in filter(None, terms):
        for node in term.find_all(exp.AggFunc):
            if node not in nodes:
                nodes.append(node)
    release = Release.DIFFERENTIAL_PRIVACY if epsilon is not None else policy.release
    layout = Layout()
    aggregates = tuple(plan_aggregate(node, schema, layout, policy.quantile_bins, release)
                       for node in nodes)
    partials = compile_partials(select, schema.name, keys, domains, layout)
    combine, unit = _combine_spec(layout, cells, policy, epsilon)
    if unit is not None:  # a DP MIN/MAX reads the bins that clear the noise
        aggregates = tuple(replace(a, threshold=EDGE_THRESHOLD_SIGMAS * unit)
                           if a.kind in (Kind.MIN, Kind.MAX) else a for a in aggregates)
    final_sql = final_query(select, keys, nodes)
    rewritten = select.sql("duckdb")
    digest = hashlib.sha256(repr((rewritten, policy.digest, epsilon, domains, aggregates,
                                  final_sql, partials, combine)).encode()).digest()
    return Plan(
        sql=sql,
        dataset=schema.name,
        rewritten=rewritten,
        domains=domains,
        aggregates=aggregates,
        final_sql=final_sql,
        partials=partials,
        combine=replace(combine, digest=digest),
        policy=policy,
        epsilon=epsilon,
        error_bounds=_error_bounds(select, nodes, aggregates),
        count_noise_std=unit,
    )


def _combine_spec(layout: Layout, cells: int, policy: DisclosurePolicy,
                  epsilon: float | None) -> tuple[CombineSpec, float | None]:
    """Shapes, scaling, supports and noise; and the noise std of a count (None: exact)."""
    bounds = [bound for _, bound in layout.sums]
    sum_noise = unit = None
    if epsilon is not None:
        # One row moves one group: each column j by <= b_j, a histogram by one bin.
        histogram_columns = layout.histogram_columns
        sensitivity = math.sqrt(len(bounds) - len(histogram_columns) + len(layout.histograms))
        unit = noise_multiplier(epsilon, policy.delta) * sensitivity
        sum_noise = tuple(unit * b for b in bounds)
    scale = tuple(_ring_scale(b * policy.max_rows + 20 * (sum_noise[j] if sum_noise else 0.0))
                  for j, b in enumerate(bounds))
    extrema = [*layout.mins, *layout.maxs]
    spec = CombineSpec(
        cells=cells,
        sum_width=len(bounds),
        sum_scale=scale,
        minima=len(layout.mins),
        maxima=len(layout.maxs),
        min_group_size=policy.min_group_size,
        max_rows=policy.max_rows,
        supports=tuple(layout.supports),
        extremum_scale=tuple(_extremum_scale(slot.magnitude) for slot in extrema),
        sum_noise=sum_noise,
    )
    return spec, unit


def _ring_scale(largest_total: float) -> float:
    """The largest power of two <= 1 keeping ``largest_total`` within a quarter of the ring."""
    exponent = math.ceil(math.log2(max(largest_total, 1.0) / (MAX_ABS / 4)))
    return 2.0 ** -max(exponent, 0)


def _extremum_scale(magnitude: float) -> float:
    """The largest power of two keeping differences of two scaled values inside the ring."""
    return 2.0 ** math.floor(math.log2(MAX_ABS / (8 * max(magnitude, 1e-9))))


def _error_bounds(select: exp.Select, nodes: list[exp.Expression],
                  aggregates: tuple[AggregateSpec, ...]) -> tuple[tuple[str, float], ...]:
    """One bin width per histogram aggregate: under its output name, else its text."""
    bounds = []
    for node, spec in zip(nodes, aggregates):
        if spec.histogram is None:
            continue
        names = [p.alias for p in select.expressions if isinstance(p, exp.Alias) and p.this == node]
        bounds += [(name, spec.histogram.width) for name in names or [node.sql("duckdb")]]
    return tuple(bounds)
