"""Plan a federated SQL query: check and rewrite it rule by rule, then compile the plan.

``RULES`` is the pipeline, applied in order; every rule is ``rule(expression, schema) ->
expression`` and either rewrites or raises ``QueryRefused``. The compiled ``Plan`` holds what
each party needs: the providers' partial SQL (``plan.partials``), the agreed shape, scaling,
group-size threshold and noise of the secure combination (``plan.combine``), and what
finalise needs on rank 0. Planning is deterministic: a provider can (and should) plan the
analyst's SQL itself and check it gets the same partial SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from analytics.aggregates import AggregateSpec, Kind, Layout, plan_aggregate
from analytics.check_aggregation import check_aggregation
from analytics.check_functions import check_functions
from analytics.check_statement import check_statement
from analytics.domains import Value, cell_count, domain_of
from analytics.errors import QueryRefused
from analytics.expand_group_by import expand_group_by
from analytics.finalise import final_query
from analytics.name_outputs import name_outputs
from analytics.partials import compile_partials
from analytics.privacy import analytic_gaussian_sigma
from analytics.qualify_columns import qualify_columns
from flai.datasets.schema import TabularSchema
from flai.mpc.fixed_point import MAX_ABS
from flai.mpc.secure_combine import CombineSpec
from flai.sql_engine import PartialPlan

RULES = (
    check_statement,
    check_functions,
    qualify_columns,
    name_outputs,
    expand_group_by,
    check_aggregation,
)


@dataclass(frozen=True)
class Disclosure:
    """Disclosure control of one query: the group-size threshold and optional DP noise."""

    min_group_size: int = 10
    epsilon: float | None = None  # None: no noise, no budget spent
    delta: float = 1e-6


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
    disclosure: Disclosure
    error_bounds: tuple[tuple[str, float], ...]  # quantile output -> max |error|
    count_noise_std: float | None


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


def plan_query(sql: str, schema: TabularSchema, disclosure: Disclosure = Disclosure(), *,
               quantile_bins: int = 256, max_rows: int = 2**30, max_cells: int = 100_000) -> Plan:
    """Plan ``sql`` over ``schema``; raise ``QueryRefused`` before anything runs.

    ``quantile_bins`` fixes the histogram of MEDIAN/QUANTILE_CONT (error < one bin width);
    ``max_rows`` bounds the total rows, which sets the fixed-point scaling; ``max_cells`` bounds
    the group domain (the product of the keys' domain sizes).

    >>> from flai.datasets.heart import SCHEMA
    >>> plan = plan_query("SELECT sex, COUNT(*) FROM heart GROUP BY sex", SCHEMA)
    >>> plan.domains, plan.partials.cells, plan.combine.min_group_size
    ((('female', 'male'),), 2, 10)
    """
    if disclosure.min_group_size < 1:
        raise QueryRefused("the minimum group size must be at least 1")
    select = rewrite(sql, schema)
    group = select.args.get("group")
    keys = list(group.expressions) if group is not None else []
    domains = tuple(domain_of(key, schema) for key in keys)
    cells = cell_count(domains)
    if cells > max_cells:
        raise QueryRefused(f"the GROUP BY domain has {cells} cells, more than {max_cells}; "
                           "use coarser buckets")
    nodes: list[exp.Expression] = []
    terms = [*select.expressions, select.args.get("having"), select.args.get("order")]
    for term in filter(None, terms):
        for node in term.find_all(exp.AggFunc):
            if node not in nodes:
                nodes.append(node)
    layout = Layout()
    aggregates = tuple(plan_aggregate(node, schema, layout, quantile_bins) for node in nodes)
    partials = compile_partials(select, schema.name, keys, domains, layout)
    combine, count_noise = _combine_spec(layout, cells, disclosure, max_rows)
    return Plan(
        sql=sql,
        dataset=schema.name,
        rewritten=select.sql("duckdb"),
        domains=domains,
        aggregates=aggregates,
        final_sql=final_query(select, keys, nodes),
        partials=partials,
        combine=combine,
        disclosure=disclosure,
        error_bounds=_error_bounds(select, nodes, aggregates),
        count_noise_std=count_noise,
    )


def _combine_spec(layout: Layout, cells: int, disclosure: Disclosure,
                  max_rows: int) -> tuple[CombineSpec, float | None]:
    bounds = [bound for _, bound in layout.sums]
    sum_noise = min_noise = max_noise = None
    unit = None
    if disclosure.epsilon is not None:
        histogram_columns = layout.histogram_columns
        sensitivity = math.sqrt(len(bounds) - len(histogram_columns) + len(layout.histograms)
                                + len(layout.mins) + len(layout.maxs))
        unit = analytic_gaussian_sigma(disclosure.epsilon, disclosure.delta, sensitivity)
        sum_noise = tuple(unit * b for b in bounds)
        min_noise = tuple(unit * max(s.bound, 1e-9) for s in layout.mins)
        max_noise = tuple(unit * max(s.bound, 1e-9) for s in layout.maxs)
    scale = tuple(_ring_scale(b * max_rows + 20 * (sum_noise[j] if sum_noise else 0.0))
                  for j, b in enumerate(bounds))
    spec = CombineSpec(
        cells=cells,
        sum_width=len(bounds),
        sum_scale=scale,
        minima=len(layout.mins),
        maxima=len(layout.maxs),
        min_group_size=disclosure.min_group_size,
        max_rows=max_rows,
        sum_noise=sum_noise,
        min_noise=min_noise or (),
        max_noise=max_noise or (),
    )
    return spec, unit


def _ring_scale(largest_total: float) -> float:
    """The largest power of two <= 1 keeping ``largest_total`` within a quarter of the ring."""
    exponent = math.ceil(math.log2(max(largest_total, 1.0) / (MAX_ABS / 4)))
    return 2.0 ** -max(exponent, 0)


def _error_bounds(select: exp.Select, nodes: list[exp.Expression],
                  aggregates: tuple[AggregateSpec, ...]) -> tuple[tuple[str, float], ...]:
    """One bin width per quantile: under its output name, else under the aggregate's text."""
    bounds = []
    for node, spec in zip(nodes, aggregates):
        if spec.kind is not Kind.QUANTILE:
            continue
        names = [p.alias for p in select.expressions if isinstance(p, exp.Alias) and p.this == node]
        bounds += [(name, spec.histogram.width) for name in names or [node.sql("duckdb")]]
    return tuple(bounds)
