"""The provider-side engine: locked down, fixed-shape output whatever groups a provider has."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics import plan_query
from federate import EXACT
from flai.datasets.heart import SCHEMA as HEART
from flai.query_types import PartialPlan, PartialQuery
from flai.sql_engine import PartialPlanMismatch, SqlEngine, run_partials

ESCAPES = [
    "SELECT 0 AS _cell, COUNT(*) FROM read_csv('/etc/passwd')",
    "SELECT 0 AS _cell, COUNT(*) FROM glob('/etc/*')",
    "SELECT 0 AS _cell, COUNT(*) FROM read_parquet('{other}')",
    "COPY heart TO '{tmp}/leak.csv'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD tpch",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
]


def _plan(sql: str) -> PartialPlan:
    return PartialPlan("heart", 1, 1, (), (), (PartialQuery(sql, (0,)),))


@pytest.mark.parametrize("sql", ESCAPES)
def test_the_engine_cannot_reach_beyond_its_table(heart_files, tmp_path, sql):
    other = heart_files[1]
    with SqlEngine(heart_files[0], HEART) as engine:
        with pytest.raises(duckdb.Error):
            engine.run(_plan(sql.format(other=other, tmp=tmp_path)))
    assert not (tmp_path / "leak.csv").exists()


def test_the_engine_reads_its_own_table(heart_files):
    with SqlEngine(heart_files[0], HEART) as engine:
        vectors = engine.run(_plan("SELECT 0 AS _cell, CAST(COUNT(*) AS DOUBLE) FROM heart"))
    assert vectors.sums.tolist() == [[pq.read_metadata(heart_files[0]).num_rows]]


def test_vectors_have_one_shape_whatever_groups_a_provider_has(heart_files):
    plan = plan_query("SELECT slope, thal, COUNT(*), MIN(age), MAX(chol) FROM heart "
                      "GROUP BY slope, thal", HEART, EXACT)
    shapes = set()
    empty_cells = []
    for path in heart_files:
        vectors = run_partials(path, HEART, plan.partials)
        shapes.add((vectors.sums.shape, vectors.mins.shape, vectors.maxs.shape))
        absent = vectors.sums[:, 0] == 0
        empty_cells.append(int(absent.sum()))
        # Where a provider has no rows, MIN holds the upper bound and MAX the lower one.
        assert (vectors.mins[absent] == 100).all() and (vectors.maxs[absent] == 0).all()
    assert shapes == {((16, plan.partials.sum_width), (16, 1), (16, 1))}
    assert max(empty_cells) > 0, "some hospital lacks some thal group; the shape must not show it"


def test_a_plan_for_another_table_is_refused(heart_files):
    with SqlEngine(heart_files[0], HEART) as engine:
        with pytest.raises(PartialPlanMismatch):
            engine.run(PartialPlan("census", 1, 1, (), (), ()))


def test_out_of_domain_keys_are_left_out(heart_files):
    """A key value outside the declared domain has no cell; it cannot widen the vector."""
    plan = plan_query("SELECT CASE WHEN age > 50 THEN 'old' ELSE 'young' END AS g, COUNT(*) "
                      "FROM heart GROUP BY 1", HEART, EXACT)
    hacked = PartialPlan(plan.partials.table, 1, plan.partials.sum_width, (), (), tuple(
        PartialQuery(q.sql.replace("['old', 'young']", "['old']"), q.sum_columns)
        for q in plan.partials.queries))
    vectors = run_partials(heart_files[0], HEART, hacked)
    assert vectors.sums.shape == (1, 1)
    assert np.isfinite(vectors.sums).all()


def test_values_outside_the_declared_bounds_are_clipped_when_loaded(heart_files, tmp_path):
    """What the ring range, the MIN/MAX neutrals, group domains and DP sensitivity assume, the
    engine makes true: bounds clipped, integral columns rounded, NULLs left NULL."""
    table = pq.read_table(heart_files[0])
    ages = table.column("age").to_pylist()
    cholesterol = table.column("chol").to_pylist()
    ages[0], ages[1], ages[2] = 150.0, 3.0, 40.4  # declared [18, 100], integral
    cholesterol[0], cholesterol[1] = 900.0, None  # declared [0, 700], nullable
    for name, values in (("age", ages), ("chol", cholesterol)):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(values, table.schema.field(name).type))
    path = tmp_path / "out-of-bounds.parquet"
    pq.write_table(table, path)

    def totals(sql: str) -> list[float]:
        with SqlEngine(path, HEART) as engine:
            vectors = engine.run(plan_query(sql, HEART, EXACT).partials)
        return [*vectors.sums[0], *vectors.mins[0], *vectors.maxs[0]]

    assert totals("SELECT SUM(age), MIN(age), MAX(age) FROM heart")[1:] == [
        sum(min(max(round(age), 18), 100) for age in ages), 18, 100]
    present = [c for c in cholesterol if c is not None]
    assert totals("SELECT COUNT(chol), MAX(chol) FROM heart")[1:] == [len(present), 700]
