"""From the revealed totals to the analyst's result table; HAVING, ORDER BY, LIMIT at the end.

The released groups become a small table ``_agg`` with one column per group key (``_k0``..)
and per aggregate (``_a0``..). The analyst's SELECT, with every aggregate and every group key
replaced by its column, HAVING as WHERE, and ORDER BY/LIMIT/OFFSET unchanged, then runs over
it in an in-memory DuckDB that can touch nothing else, so output expressions, NULL ordering
and types follow DuckDB exactly as a centralised query would.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from sqlglot import exp

from analytics.aggregates import evaluate
from analytics.privacy import DisclosureReport
from flai.query_types import CombinedVectors

if TYPE_CHECKING:
    import duckdb

    from analytics.plan import Plan
    from flai.privacy_ledger import BudgetCharge

RESULT_TABLE = "_agg"


def final_query(select: exp.Select, keys: list[exp.Expression],
                aggregates: list[exp.Expression]) -> str:
    """The analyst's query restated over ``_agg``.

    >>> import sqlglot
    >>> select = sqlglot.parse_one(
    ...     "SELECT sex AS s, AVG(age) AS a FROM heart GROUP BY sex HAVING COUNT(*) > 20 ORDER BY a",
    ...     read="duckdb")
    >>> final_query(select, [exp.column("sex")], [select.find(exp.Avg), select.find(exp.Count)])
    'SELECT _k0 AS s, _a0 AS a FROM _agg WHERE _a1 > 20 ORDER BY a'
    """
    def to_result(node: exp.Expression) -> exp.Expression:
        for i, aggregate in enumerate(aggregates):
            if node == aggregate:
                return exp.column(f"_a{i}")
        for j, key in enumerate(keys):
            if node == key:
                return exp.column(f"_k{j}")
        return node

    outputs = [projection.copy().transform(to_result) for projection in select.expressions]
    final = exp.select(*outputs).from_(RESULT_TABLE)
    having = select.args.get("having")
    if having is not None:
        aliases = {o.alias.lower(): o.this for o in outputs if isinstance(o, exp.Alias)}

        def resolve_alias(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and node.name.lower() in aliases:
                return aliases[node.name.lower()].copy()
            return node

        final = final.where(having.this.copy().transform(to_result).transform(resolve_alias))
    for clause in ("order", "limit", "offset"):
        if select.args.get(clause) is not None:
            final.set(clause, select.args[clause].copy().transform(to_result))
    return final.sql("duckdb")


def finalise(plan: Plan, combined: CombinedVectors) -> pa.Table:
    """The query's result from the combined totals (rank 0, after reveal).

    Quantile outputs carry their error bound: ``schema.metadata[b"flai.error_bounds"]`` is a
    JSON object from output name to the largest possible absolute error (one bin width).
    """
    cells = np.flatnonzero(combined.released)
    shape = tuple(len(domain) for domain in plan.domains)
    positions = np.unravel_index(cells, shape) if shape else ()
    columns = {f"_k{j}": pa.array([domain[i] for i in positions[j]], type=pa.array(domain).type)
               for j, domain in enumerate(plan.domains)}
    columns |= {f"_a{i}": evaluate(spec, combined, cells) for i, spec in enumerate(plan.aggregates)}
    with _sandbox().cursor() as cursor:
        cursor.register(RESULT_TABLE, pa.table(columns))
        result = cursor.execute(plan.final_sql).to_arrow_table()
    if plan.error_bounds:
        metadata = {b"flai.error_bounds": json.dumps(dict(plan.error_bounds)).encode()}
        result = result.replace_schema_metadata(metadata)
    return result


@functools.cache
def _sandbox() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process that can touch nothing; each finalise uses a cursor.

    Opening a database costs about 15 ms, more than the rest of finalise; a cursor's
    registered table is its own and goes with it.
    """
    import duckdb  # here, not at the top: planning a query needs no DuckDB

    connection = duckdb.connect(":memory:", config={
        "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def disclosure_report(plan: Plan, combined: CombinedVectors,
                      charge: BudgetCharge | None = None) -> DisclosureReport:
    """What the release disclosed: groups released and suppressed, epsilon spent and left."""
    epsilon = plan.epsilon
    return DisclosureReport(
        release=plan.policy.release.value if epsilon is None else "differential-privacy",
        min_group_size=plan.policy.min_group_size,
        groups_released=int(combined.released.sum()),
        cells_suppressed=combined.suppressed,
        epsilon=epsilon,
        delta=plan.policy.delta if epsilon is not None else None,
        epsilon_spent=charge.spent if charge is not None else None,
        epsilon_remaining=charge.remaining if charge is not None else None,
        count_noise_std=plan.count_noise_std,
        error_bounds=dict(plan.error_bounds),
    )
