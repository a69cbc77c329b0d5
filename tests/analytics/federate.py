"""Run a query the federated way (plaintext combination) and the centralised way; compare."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from analytics import Plan, finalise, plan_query
from flai.datasets.policy import DisclosurePolicy, Release
from flai.datasets.schema import TabularSchema
from flai.mpc.secure_combine import combine_plaintext
from flai.sql_engine import run_partials

REL = 1e-6
# Exact release with k = 1: the planner and the combination, compared with DuckDB as such.
EXACT = DisclosurePolicy(release=Release.EXACT, min_group_size=1, quantile_bins=256,
                         max_cells=100_000)


def federate(sql: str, schema: TabularSchema, files: Sequence[Path],
             policy: DisclosurePolicy = EXACT) -> tuple[pa.Table, Plan]:
    plan = plan_query(sql, schema, policy)
    partials = [run_partials(path, schema, plan.partials) for path in files]
    return finalise(plan, combine_plaintext(plan.combine, partials)), plan


def centralised(sql: str, table: str, files: Sequence[Path]) -> pa.Table:
    connection = duckdb.connect()
    listed = ", ".join(f"'{path}'" for path in files)
    connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")
    return connection.execute(sql).to_arrow_table()


def _same(ours: object, theirs: object, bound: float | None, abs_tol: float) -> bool:
    if theirs is None or ours is None:
        return theirs is None and ours is None
    if bound is not None:  # an approximate quantile: within one bin
        return abs(float(ours) - float(theirs)) <= bound * (1 + 1e-9)
    if isinstance(theirs, Decimal):
        if abs(float(ours) - float(theirs)) <= abs_tol:  # fixed-point rounding, when admitted
            return True
        unit = 10.0 ** theirs.as_tuple().exponent
        # Exact to the last decimal wherever float64 holds the total that finely.
        if unit >= 1e3 * np.spacing(abs(float(theirs))):
            return abs(float(ours) - float(theirs)) < unit / 2
        return math.isclose(float(ours), float(theirs), rel_tol=1e-12)
    if isinstance(theirs, bool) or isinstance(theirs, (str, bytes)) or not isinstance(theirs, (int, float)):
        return ours == theirs
    if isinstance(theirs, int) and isinstance(ours, int):
        return ours == theirs
    return math.isclose(float(ours), float(theirs), rel_tol=REL, abs_tol=abs_tol)


def _rows(table: pa.Table) -> list[tuple]:
    return list(zip(*(column.to_pylist() for column in table.columns))) if table.num_rows else []


def assert_same(ours: pa.Table, theirs: pa.Table, plan: Plan, ordered: bool,
                abs_tol: float = 1e-9) -> None:
    """Same rows (in order if ``ordered``): exact keys, counts and decimals; floats to 1e-6.

    ``abs_tol`` admits the fixed-point rounding of a secure combination (2**-17 per party).
    """
    assert ours.num_columns == theirs.num_columns, (ours.schema, theirs.schema)
    bounds = dict(plan.error_bounds)
    column_bounds = [bounds.get(name) for name in ours.column_names]
    our_rows = _rows(ours)
    their_rows = _rows(theirs)
    assert len(our_rows) == len(their_rows), (our_rows, their_rows)

    def matches(a: tuple, b: tuple) -> bool:
        return all(_same(x, y, bound, abs_tol) for x, y, bound in zip(a, b, column_bounds))

    if ordered:
        for a, b in zip(our_rows, their_rows):
            assert matches(a, b), f"\nfederated   {a}\ncentralised {b}"
        return
    unmatched = list(our_rows)
    for b in their_rows:
        found = next((a for a in unmatched if matches(a, b)), None)
        assert found is not None, f"\ncentralised row {b} not in federated result\n{unmatched}"
        unmatched.remove(found)
