"""A governed job on real parts: the chain's approval gates the training run, the governance
sync starts each approved task once (through its deployment, under an idempotency key), the
run trains, validates (fairness from secure sums) and records its report, the SubDAO accepts
the model, and the next sync settles the task's escrowed pool and puts the model on sale: a consumer pays for private
predictions on both back-ends."""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
import pytest
import ray
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from contracts import ChainContract, TaskState, keccak_id
from contracts.market import Market, RequestState
from flai.crypto import KeyStore, fetch_model
from flai.datasets import Dataset
from flai.inference import TOLERANCE, Backend, ModelWeights, plaintext_predict
from flai.learning.features import encode_features
from flai.lineage import model_context
from flai.settings import environment, get_settings
from flows.inference import inference
from flai.learning.config import JobSpec
from flows.governance_sync import TRAINING_DEPLOYMENT, governance_sync
from flows.governed_training import governed_training
from tasks.chain import ledger
from tasks.governance import TaskNotApprovedError, governance, validation_report
from tasks.inference import (
    InferenceBudgetExceededError,
    consumer_predictions,
    locate_model,
    release_payment,
)
from tasks.publish import content_store
from tasks.settlement import funded_signer, last_settled, settlement_of
from tests.dao import DOMAIN, approved_task, proposed_task, vote_on_model
from tests.inference.faulty import DyingConsumer, StalledConsumer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server", "ray_cluster")]


def test_an_unapproved_task_cannot_start() -> None:
    with pytest.raises(TaskNotApprovedError, match="unknown to the task registry"):
        governed_training(f"never-proposed-{uuid.uuid4().hex[:6]}")
    # Proposed, not yet voted: still refused, and nothing reaches the chain's lineage.
    name = f"proposed-{uuid.uuid4().hex[:6]}"
    task_id, _ = proposed_task(name, JobSpec("heart", rounds=1))
    with pytest.raises(TaskNotApprovedError, match="is proposed on chain, not approved"):
        governed_training(name)
    assert ledger().round_count(task_id) == 0


async def _runs_of(deployment_id) -> list:
    async with get_client() as client:
        return await client.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment_id])))


def test_a_governed_job_from_approval_to_settled_pool() -> None:
    name = f"governed-{uuid.uuid4().hex[:6]}"
    task_id = approved_task(name, JobSpec("heart", rounds=1))
    dao = governance()
    assert dao.task(task_id).state is TaskState.APPROVED

    # Through the deployment: a sync run twice (and each start retried) makes one flow run.
    deployment_id = governed_training.to_deployment(TRAINING_DEPLOYMENT.split("/")[1]).apply()
    first, second = governance_sync(), governance_sync()
    assert first[name].startswith("training started: ") and first[name] == second[name]
    runs = [run for run in asyncio.run(_runs_of(deployment_id)) if run.parameters == {"task": name}]
    assert len(runs) == 1
    assert runs[0].idempotency_key == f"{TRAINING_DEPLOYMENT}/{name}"
    for run in asyncio.run(_runs_of(deployment_id)):  # no worker here: the test runs it inline
        asyncio.run(_delete(run.id))

    # Inline: the run trains, validates and records; the sync opens the validation proposal.
    actions = governance_sync(inline=True)
    assert actions[name].startswith("validation proposal ")
    found = dao.task(task_id)
    assert found.state is TaskState.TRAINED and found.model_cid and found.report_cid
    report = validation_report(found)
    assert report.model_cid == found.model_cid
    assert found.accuracy_ppm == round(report.metrics.accuracy * 10**6)
    assert set(report.fairness.group_sizes) == {"female", "male"}
    assert report.fairness.demographic_parity_difference is not None
    assert _lineage_spec(name)["governance"] == f"dao:{DOMAIN}"
    rounds = ledger().round_count(task_id)
    # A second sync trains nothing again and opens no second proposal.
    again = governance_sync(inline=True)
    assert again[name] == actions[name] and ledger().round_count(task_id) == rounds

    # The SubDAO accepts the model; the next sync settles the task's pool, once.
    vote_on_model(task_id)
    settled = governance_sync(inline=True)
    assert settled[name].startswith("settlement: epoch ")
    assert dao.task(task_id).state is TaskState.SETTLED
    assert name not in governance_sync(inline=True)
    _paid_inference(name, task_id)


def _paid_inference(name: str, task_id: bytes) -> None:
    """The settled model is on sale: a consumer pays for private predictions (both back-ends),
    equal to the plaintext model's; revenue goes to its contributors; a failed, dead or
    timed-out request is refunded, and nothing is paid twice."""
    chain, market = ledger(), Market(ledger())
    prices = market.prices(task_id)
    assert [tier.max_batch for tier in prices.tiers] == list(get_settings().inference_tiers)
    consumer = f"clinic-{uuid.uuid4().hex[:6]}"
    account = funded_signer(consumer).sender
    chain.mint_tokens(account, 100 * 10**18)
    frame = Dataset.HEART.load().sample(5, random_state=3)
    rows = get_settings().data_dir / f"{consumer}.csv"
    np.savetxt(rows, encode_features(frame, Dataset.HEART.schema), delimiter=",")
    ref = locate_model.fn(name)
    key = KeyStore.for_data_dir(get_settings().data_dir).load(name)
    weights = ModelWeights.from_model_bytes(fetch_model(
        content_store(), ref.cid, key, model_context(name, ref.round_number), ref.sha256))
    expected = plaintext_predict(weights, np.loadtxt(rows, delimiter=",", ndmin=2))

    for backend in (Backend.MPC, Backend.HE):
        before, quote = chain.token_balance(account), market.quote(task_id, 5)
        result = inference(name, consumer, rows, backend)
        assert result.state is RequestState.RELEASED and result.price == quote and result.batch == 5
        assert np.abs(consumer_predictions(consumer) - expected).max() < TOLERANCE
        assert chain.token_balance(account) == before - quote
        record = json.loads(content_store().get(result.lineage_cid))
        assert record["ended"] == "released" and record["model_cid"] == ref.cid
        assert not {"rows", "predictions", "inputs", "outputs"} & set(record)
    # The contributors' revenue, by their settled shares, claimable by pull.
    paid = [r for r in settlement_of(chain, last_settled(chain)).split.rewards if r.amount]
    assert sum(market.claimable(task_id, r.account) for r in paid) > 0
    # A retried release pays nothing more.
    request = market.get_request(bytes.fromhex(result.request_id[2:]))
    held = chain.token_balance(chain.contract(ChainContract.MARKET).address)
    assert release_payment.fn(request) is RequestState.RELEASED
    assert chain.token_balance(chain.contract(ChainContract.MARKET).address) == held
    # A consumer's rows on a model are bounded (extraction) by the model's owners, on chain:
    # past the budget nothing is escrowed, whatever the consumer's own settings say.
    served = market.rows_served(task_id, account)
    assert served == 10 and market.prices(task_id).row_budget == get_settings().inference_rows_per_consumer
    market.set_row_budget(task_id, served + 4)
    with environment({"FLAI_INFERENCE_ROWS_PER_CONSUMER": str(10**9)}):
        get_settings.cache_clear()
        before = chain.token_balance(account)
        with pytest.raises(InferenceBudgetExceededError, match="10 row.* pass the 14"):
            inference(name, consumer, rows, Backend.MPC)
        assert chain.token_balance(account) == before
    get_settings.cache_clear()
    market.set_row_budget(task_id, get_settings().inference_rows_per_consumer)
    # Rows the model cannot read fail the request after the escrow: it is refunded.
    np.savetxt(rows, np.ones((2, 3)), delimiter=",")
    before = chain.token_balance(account)
    with pytest.raises(Exception):  # noqa: B017  (the holder's error, whatever its type)
        inference(name, consumer, rows, Backend.HE)
    assert chain.token_balance(account) == before
    _faulty_consumers(name, frame)
    # The holder outlives them: the next request is served.
    np.savetxt(rows, encode_features(frame, Dataset.HEART.schema), delimiter=",")
    assert inference(name, consumer, rows, Backend.MPC).state is RequestState.RELEASED
    assert np.abs(consumer_predictions(consumer) - expected).max() < TOLERANCE


def _faulty_consumers(name: str, frame) -> None:
    """A consumer that never answers (the request times out; the holder waits for it until
    the MPC timeout), and one whose process dies inside the MPC session: each escrow is
    refunded."""
    for faulty, settings in ((StalledConsumer, {"FLAI_INFERENCE_TIMEOUT_S": "3"}), (DyingConsumer, {})):
        consumer = f"{faulty.__name__.lower()}-{uuid.uuid4().hex[:6]}"
        account = funded_signer(consumer).sender
        ledger().mint_tokens(account, 100 * 10**18)
        rows = get_settings().data_dir / f"{consumer}.csv"
        np.savetxt(rows, encode_features(frame, Dataset.HEART.schema), delimiter=",")
        party = ray.remote(num_cpus=0, max_restarts=0)(faulty).options(
            name=f"consumer/{consumer}", lifetime="detached").remote(consumer, rows)
        with environment(settings):
            get_settings.cache_clear()
            with pytest.raises(Exception):  # noqa: B017  (a dead actor, a timeout)
                inference(name, consumer, rows, Backend.MPC)
        get_settings.cache_clear()
        assert ledger().token_balance(account) == 100 * 10**18
        ray.kill(party)


def _lineage_spec(name: str) -> dict:
    return json.loads(content_store().get(ledger().get_task(keccak_id(name)).spec_cid))


async def _delete(flow_run_id) -> None:
    async with get_client() as client:
        await client.delete_flow_run(flow_run_id)
