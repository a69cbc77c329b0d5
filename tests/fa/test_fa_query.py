"""Federated SQL end to end: real provider actors, real CrypTen parties with a dealer, real
Prefect flow runs, the chain's budget, under the heart data set's own disclosure policy."""

from __future__ import annotations

import dataclasses
import math

import duckdb
import pytest
import ray
from typer.testing import CliRunner

from actors import federation as fed
from actors.query_party import LEDGER_FILE, ProviderRefusal
from analytics import QueryRefused
from contracts import keccak_id
from cli import app
from flai.datasets.heart import POLICY
from flai.privacy_ledger import PrivacyBudgetExceeded, PrivacyLedger, chain_budget
from flows.fa_query import fa_query
from tasks.fa import QueryFailed
from tasks.chain import ledger

pytestmark = pytest.mark.slow


def central(heart_files, sql: str) -> list[tuple]:
    connection = duckdb.connect()
    files = ", ".join(f"'{path}'" for path in heart_files.values())
    connection.execute(f"CREATE TABLE heart AS SELECT * FROM read_parquet([{files}])")
    return connection.execute(sql).fetchall()


def staged(federation) -> list[int]:
    return [ray.get(fed.provider(federation, name).__ray_call__.remote(
        lambda provider: len(provider._query_partials))) for name in federation.providers]


def test_a_query_is_differentially_private_by_default_and_useful(prefect_server, heart_federation,
                                                                 heart_files):
    sql = "SELECT sex, COUNT(*) AS n, AVG(age) AS age FROM heart GROUP BY sex ORDER BY sex"
    result = fa_query(heart_federation, sql)  # no epsilon: the policy's default, never exact

    assert result.disclosure.release == "differential-privacy"
    assert result.disclosure.epsilon == POLICY.epsilon
    assert 0 < result.disclosure.epsilon_remaining < POLICY.budget_epsilon
    # The strictest ledger counts: a provider's own, which the chain of a new process lacks.
    spent = [ray.get(fed.provider(heart_federation, name).__ray_call__.remote(
        lambda provider: PrivacyLedger(provider.data_file.parent / LEDGER_FILE, "heart",
                                       POLICY).spent())) for name in heart_federation.providers]
    assert result.disclosure.epsilon_spent == pytest.approx(max(spent), abs=1e-6)
    expected = central(heart_files, sql)
    rows = [tuple(row.values()) for row in result.table.to_pylist()]
    sigma = result.disclosure.count_noise_std * math.sqrt(4 / 3)
    assert [row[0] for row in rows] == [row[0] for row in expected]
    for got, want in zip(rows, expected):
        assert got[1] != want[1] or got[2] != want[2]  # noised
        assert abs(got[1] - want[1]) <= 6 * sigma
        assert abs(got[2] - want[2]) <= 5  # years, for groups of 194 and 726 patients
    assert result.participants == heart_federation.providers and result.tx_hash.startswith("0x")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM heart",
    "SELECT age FROM heart",
    "SELECT COUNT(*) FROM read_csv('/etc/passwd')",
    "SELECT COUNT(*) FROM heart; COPY heart TO '/tmp/x.csv'",
    "SELECT COUNT(*) FROM heart WHERE CAST(sex || age AS DOUBLE) > 0",
])
def test_unsafe_queries_are_refused_and_nothing_runs(prefect_server, heart_federation, sql):
    before = staged(heart_federation)
    with pytest.raises(QueryRefused):
        fa_query(heart_federation, sql)
    assert staged(heart_federation) == before


@pytest.mark.parametrize("epsilon", [0.0, -1.0, float("nan"), float("inf"), 50.0])
def test_an_epsilon_outside_the_policy_is_refused(prefect_server, heart_federation, epsilon):
    with pytest.raises(QueryRefused, match="epsilon must be a number within"):
        fa_query(heart_federation, "SELECT COUNT(*) FROM heart", epsilon)


def test_providers_return_metadata_only_and_refuse_another_policy(heart_federation):
    handle = fed.provider(heart_federation, heart_federation.providers[0])
    answer = ray.get(handle.stage_query.remote(
        "meta", "SELECT sex, SUM(chol) FROM heart GROUP BY sex", None, POLICY.digest))
    assert [f.name for f in dataclasses.fields(answer)] == ["provider", "query_id", "plan_digest",
                                                            "refusal", "epsilon_spent"]
    assert answer.refusal is None and len(answer.plan_digest) == 64
    assert 0 < answer.epsilon_spent < POLICY.budget_epsilon  # depends on past queries only
    assert ray.get(handle.can_combine.remote("meta")) is True

    laxer = dataclasses.replace(POLICY, min_group_size=1, budget_epsilon=1e9)
    refused = ray.get(handle.stage_query.remote("lax", "SELECT COUNT(*) FROM heart", None,
                                                laxer.digest))
    assert refused.refusal is ProviderRefusal.POLICY_MISMATCH and refused.plan_digest is None


def test_a_provider_error_fails_the_whole_query_and_says_nothing_of_the_data(
        prefect_server, heart_federation, caplog):
    secret = "row: age=63 chol=233"

    def break_engine(provider):
        class Broken:
            def run(self, plan):
                raise RuntimeError(secret)
        provider._engine = Broken()

    def repair_engine(provider):
        provider._engine = None

    handle = fed.provider(heart_federation, heart_federation.providers[1])
    ray.get(handle.__ray_call__.remote(break_engine))
    try:
        with pytest.raises(QueryFailed) as failed:
            fa_query(heart_federation, "SELECT COUNT(*) AS n FROM heart")
    finally:
        ray.get(handle.__ray_call__.remote(repair_engine))
    assert failed.value.reasons == (ProviderRefusal.COULD_NOT_EVALUATE.value,)
    assert secret not in str(failed.value) and secret not in caplog.text


def test_flai_query_cli(prefect_server, heart_federation):
    result = CliRunner().invoke(app, ["query", "SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex",
                                      "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "sex,n" in result.output and "male," in result.output

    refused = CliRunner().invoke(app, ["query", "SELECT * FROM heart"])
    assert refused.exit_code == 2 and "refused" in refused.output
    assert "Traceback" not in refused.output


def test_a_provider_whose_own_ledger_is_spent_refuses(prefect_server, heart_federation, heart_files):
    """The chain of this process may be new; the provider's own ledger is not."""
    name = heart_federation.providers[0]
    path = heart_files[name].parent / LEDGER_FILE
    saved = path.read_bytes() if path.exists() else None
    own = PrivacyLedger(path, "heart", POLICY)
    try:
        for epsilon in (POLICY.epsilon_range[1], POLICY.epsilon):  # spend it to below one query
            with pytest.raises(PrivacyBudgetExceeded):
                for spent in range(1000):
                    own.charge(f"test: earlier {epsilon} {spent}", epsilon)
        with pytest.raises(QueryFailed) as refused:
            fa_query(heart_federation, "SELECT COUNT(*) AS n FROM heart")
        assert refused.value.reasons == (ProviderRefusal.BUDGET_SPENT.value,)
    finally:
        if saved is None:
            path.unlink()
        else:
            path.write_bytes(saved)


def test_a_budget_spent_on_chain_is_refused_before_any_provider_computes(
        prefect_server, heart_federation):
    """Last in the module: it spends this process's chain budget of the heart data set."""
    chain, dataset_id = ledger(), keccak_id("heart")
    chain.register_dataset(dataset_id, POLICY.digest, chain_budget(POLICY))
    left = chain.get_dataset(dataset_id).remaining
    chain.charge_budget(dataset_id, keccak_id("test: earlier queries"), left - 1)
    before = staged(heart_federation)
    with pytest.raises(PrivacyBudgetExceeded, match="left"):
        fa_query(heart_federation, "SELECT AVG(age) AS a FROM heart")
    assert staged(heart_federation) == before
