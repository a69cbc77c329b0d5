"""Federated SQL end to end: real provider actors, real CrypTen parties with a dealer,
real Prefect flow runs, compared with centralised DuckDB over the union of the partitions."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
import ray
from typer.testing import CliRunner

from actors import federation as fed
from analytics import Disclosure, QueryRefused
from flai.cli import app
from flai.privacy_ledger import PrivacyBudgetExceeded
from flai.settings import get_settings
from flows.fa_query import fa_query

pytestmark = pytest.mark.slow


def central(heart_files, sql: str) -> list[tuple]:
    connection = duckdb.connect()
    files = ", ".join(f"'{path}'" for path in heart_files.values())
    connection.execute(f"CREATE TABLE heart AS SELECT * FROM read_parquet([{files}])")
    return connection.execute(sql).fetchall()


def test_aggregates_equal_centralised_duckdb(prefect_server, heart_federation, heart_files):
    sql = ("SELECT sex, COUNT(*) AS n, SUM(disease) AS sick, AVG(age) AS age, MIN(chol) AS lo, "
           "MAX(thalch) AS hi FROM heart WHERE age >= 40 GROUP BY sex ORDER BY sex")
    result = fa_query(heart_federation, sql)

    expected = central(heart_files, sql)
    rows = [tuple(row.values()) for row in result.table.to_pylist()]
    assert [row[:3] for row in rows] == [row[:3] for row in expected]  # keys, counts, sums exact
    for got, want in zip(rows, expected):
        assert got[3:] == pytest.approx(want[3:], rel=1e-6)
    assert result.participants == heart_federation.providers and not result.dropped
    assert result.tx_hash.startswith("0x")


def test_small_groups_are_suppressed_before_release(prefect_server, heart_federation, heart_files):
    sql = "SELECT cp, COUNT(*) AS n FROM heart WHERE age > 70 GROUP BY cp ORDER BY cp"
    counts = dict(central(heart_files, sql))
    assert any(n < 10 for n in counts.values())  # the premise: some group is small

    result = fa_query(heart_federation, sql)

    released = {row["cp"]: row["n"] for row in result.table.to_pylist()}
    assert released == {cp: n for cp, n in counts.items() if n >= 10}
    assert result.disclosure.cells_suppressed >= sum(1 for n in counts.values() if n < 10)


def test_budget_is_charged_and_an_overrun_is_refused_before_anything_runs(
        prefect_server, heart_federation):
    budget = get_settings().epsilon_budget
    noisy = fa_query(heart_federation, "SELECT COUNT(*) AS n FROM heart", epsilon=budget / 2)
    assert noisy.disclosure.epsilon_remaining == pytest.approx(budget / 2)
    assert noisy.table.num_rows == 1 and abs(noisy.table.to_pylist()[0]["n"] - 920) < 200

    def staged() -> list[int]:
        return [ray.get(fed.provider(heart_federation, name).__ray_call__.remote(
            lambda provider: len(provider._query_partials))) for name in heart_federation.providers]

    before = staged()
    with pytest.raises(PrivacyBudgetExceeded, match="left"):
        fa_query(heart_federation, "SELECT AVG(age) AS a FROM heart", epsilon=budget)
    assert staged() == before  # refused before any provider computed


@pytest.mark.parametrize("sql", [
    "SELECT * FROM heart",
    "SELECT age FROM heart",
    "SELECT COUNT(*) FROM read_csv('/etc/passwd')",
    "SELECT COUNT(*) FROM heart; COPY heart TO '/tmp/x.csv'",
])
def test_unsafe_queries_are_refused_and_nothing_runs(prefect_server, heart_federation, sql):
    with pytest.raises(QueryRefused):
        fa_query(heart_federation, sql)


def test_providers_return_metadata_only(heart_federation):
    handle = fed.provider(heart_federation, heart_federation.providers[0])
    staged = ray.get(handle.stage_query.remote(
        "meta", "SELECT sex, SUM(chol) FROM heart GROUP BY sex", Disclosure()))
    assert [f.name for f in dataclasses.fields(staged)] == ["provider", "query_id"]
    assert ray.get(handle.can_combine.remote("meta")) is True


def test_flai_query_cli(prefect_server, heart_federation):
    result = CliRunner().invoke(app, ["query", "SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex",
                                      "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "sex,n" in result.output and "male,726" in result.output

    refused = CliRunner().invoke(app, ["query", "SELECT * FROM heart"])
    assert refused.exit_code == 2 and "refused" in refused.output
