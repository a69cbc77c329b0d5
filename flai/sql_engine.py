"""A provider's partial aggregates, computed by a locked-down DuckDB over its own table only.

The provider's Parquet file is loaded into an in-memory table first, every numeric column
as DOUBLE, clipped to its declared ``[low, high]`` and, if declared integral, rounded (NULLs
stay NULL): from then on the declared bounds are true of every value any query can
aggregate, which the fixed-point range of the secure sum, the neutral MIN/MAX values, the
group domains and the sensitivity of DP noise rely on, and no arithmetic on a column can
overflow an integer or decimal type (DOUBLE never raises). Data that passed the quality gate
is already within its bounds, so the clip changes nothing there; doing it once at load, not
per row in every query, took a fifth off the partial query of TPC-H Q1. Then
the connection is locked: no file system, no network, no extension loading, and no way to change that back
(``enable_external_access=false`` then ``lock_configuration=true``). Whatever SQL reaches it
can read that one table and nothing else on the machine.

The output is a ``PartialVectors``: fixed-shape float64 arrays over the whole declared group
domain. It is meant for ``flai.mpc.secure_combine`` only and must never be sent in the clear.
The provider should build the plan itself from the analyst's SQL text
(``analytics.plan_query``, deterministic) rather than accept partial SQL from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

from flai.datasets.schema import Numeric, TabularSchema
from flai.query_types import PartialPlan, PartialVectors

LOCKED_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}


class PartialPlanMismatch(ValueError):
    """The plan is for another table than the one this engine holds."""


class SqlEngine:
    """One provider's table in a locked in-memory DuckDB; open once, run many plans."""

    def __init__(self, parquet_path: Path, schema: TabularSchema, threads: int | None = None) -> None:
        self.table = schema.name
        self._connection = duckdb.connect(":memory:", config=LOCKED_CONFIG)
        self._connection.execute("SET enable_progress_bar = false")
        if threads is not None:
            self._connection.execute(f"SET threads = {int(threads)}")
        numeric = [column for column in schema.columns if isinstance(column, Numeric)]
        replaced = ", ".join(f"{_bounded(column)} AS {_identifier(column.name)}" for column in numeric)
        self._connection.execute(
            f"CREATE TABLE {_identifier(self.table)} AS SELECT * "
            f"{f'REPLACE ({replaced}) ' if replaced else ''}FROM read_parquet(?)",
            [str(parquet_path)])
        self._connection.execute("SET enable_external_access = false")
        self._connection.execute("SET lock_configuration = true")

    def run(self, plan: PartialPlan) -> PartialVectors:
        """Execute ``plan``'s queries; scatter their rows into zero-filled vectors."""
        if plan.table != self.table:
            raise PartialPlanMismatch(f"plan reads {plan.table!r}, this engine holds {self.table!r}")
        sums = np.zeros((plan.cells, plan.sum_width))
        mins = np.tile(np.asarray(plan.min_neutral, dtype=np.float64), (plan.cells, 1))
        maxs = np.tile(np.asarray(plan.max_neutral, dtype=np.float64), (plan.cells, 1))
        for query in plan.queries:
            result = self._connection.execute(query.sql).fetchnumpy()
            columns = [np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
                       for values in result.values()]
            cell = columns[0]
            keep = ~np.isnan(cell)  # rows whose key lies outside the declared domain
            cell = cell[keep].astype(np.int64)
            offset = 0
            if query.binned:
                offset = columns[1][keep].astype(np.int64)
            values = [column[keep] for column in columns[1 + query.binned:]]
            targets = ([(sums, c) for c in query.sum_columns]
                       + [(mins, c) for c in query.min_columns]
                       + [(maxs, c) for c in query.max_columns])
            for (array, column), value in zip(targets, values, strict=True):
                present = ~np.isnan(value)
                array[cell[present], (column + offset)[present] if query.binned else column] = \
                    value[present]
        return PartialVectors(sums, mins, maxs)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> SqlEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_partials(parquet_path: Path, schema: TabularSchema, plan: PartialPlan,
                 threads: int | None = None) -> PartialVectors:
    """Load ``parquet_path`` as ``schema``'s table in a locked DuckDB, run ``plan``, close."""
    with SqlEngine(parquet_path, schema, threads) as engine:
        return engine.run(plan)


def _bounded(column: Numeric) -> str:
    """``column`` as DOUBLE, rounded if integral, clipped to its bounds; NULL stays NULL."""
    value = f"CAST({_identifier(column.name)} AS DOUBLE)"
    if column.integral:
        value = f"ROUND({value})"
    low, high = float(column.low), float(column.high)
    # CASE, not LEAST/GREATEST: those skip NULLs, and would turn a NULL into a bound.
    return f"CASE WHEN {value} < {low!r} THEN {low!r} WHEN {value} > {high!r} THEN {high!r} ELSE {value} END"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
