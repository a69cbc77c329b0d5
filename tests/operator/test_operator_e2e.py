"""The operator's day, end to end, on real parts: start the stack, deploy from prefect.yaml,
run a training job through the Prefect API, watch it in the real UI, take a governed job from
its proposal to a settled, validated model (the runs the governance sync starts linked to it),
stop and restart the stack, and find the run, the chain's lineage and the models on IPFS still
there."""

from __future__ import annotations

import json

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from contracts.ledger import Ledger
from contracts.records import keccak_id
from deployments import stack
from deployments.processes import tool
from flai.stack import PROJECT_DIR, Action, StackConfig
from flai.storage import KuboStore
from tests.operator.browser import shows
from tests.operator.support import cli_env, flai_settings, prefect_api

DEPLOYMENT = "train/nightly-heart"
QUERY = "query/ad-hoc"
SYNC = "governance/sync"
GOVERNED = "governed-training/on-approval"
SETTLE = "settle/weekly"
BENCH_OUT = PROJECT_DIR / "bench" / "out"


def actions(reports: list[stack.ComponentReport]) -> dict[str, Action]:
    return {report.name: report.action for report in reports}


@pytest.mark.slow
def test_operator_day(stack_config: StackConfig, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.deployments import run_deployment
    from prefect.exceptions import PrefectHTTPStatusError

    config = stack_config
    timings: dict[str, float] = {}

    # Start the stack; a second `up` finds every part running and starts nothing.
    started = time.monotonic()
    first = stack.up(config)
    timings["up"] = time.monotonic() - started
    assert actions(first) == {"prefect-server": Action.STARTED, "prefect-worker": Action.STARTED,
                              "anvil": Action.STARTED, "ipfs": Action.STARTED, "ray-head": Action.OFF}
    second = stack.up(config)
    assert actions(second) == actions(first) | {name: Action.ALREADY_RUNNING for name in
                                                ("prefect-server", "prefect-worker", "anvil", "ipfs")}
    assert [r.pid for r in second] == [r.pid for r in first]
    env_file = (config.data_dir / "stack" / "env").read_text()
    assert f"export PREFECT_API_URL={config.api_url}" in env_file
    assert f"export FLAI_CHAIN_URL={config.chain_url}" in env_file

    # Deploy every deployment of prefect.yaml, as an operator would, with the Prefect CLI.
    env = cli_env(config, tmp_path / "cli-prefect-home")
    started = time.monotonic()
    deploy = subprocess.run([tool("prefect"), "--no-prompt", "deploy", "--all"], cwd=PROJECT_DIR,
                            env=env, capture_output=True, text=True, timeout=300)
    timings["deploy"] = time.monotonic() - started
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert f"Deployment '{DEPLOYMENT}' successfully created" in " ".join(deploy.stdout.split())

    # Trigger a two-round run through the API; the stack's worker runs it.
    with prefect_api(config), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        assert deployment.work_pool_name == "flai-process"
        assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
        with pytest.raises(PrefectHTTPStatusError, match="'mnist' is not one of"):  # the schema
            client.create_flow_run_from_deployment(deployment.id, parameters={"dataset": "mnist"})
        started = time.monotonic()
        run = run_deployment(DEPLOYMENT, parameters={"rounds": 2}, timeout=900, poll_interval=1)
        timings["training run (2 rounds)"] = time.monotonic() - started
        assert run.state is not None and run.state.is_completed(), run.state
        assert run.name == "heart-logreg-2r-s0"
        (job,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
        # An ad hoc federated query through its deployment: the answer and its disclosure
        # report come back, and are attached to the run.
        started = time.monotonic()
        query = run_deployment(QUERY, parameters={
            "sql": "SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex"}, timeout=600, poll_interval=1)
        timings["query run"] = time.monotonic() - started
        assert query.state is not None and query.state.is_completed(), query.state
        by_key = {a.key: a for a in client.read_artifacts() if a.key}
        assert "fa-query-heart-4-disclosure" in by_key
        answer = {row["sex"]: row["n"] for row in json.loads(by_key["fa-query-heart-4"].data)}
        # Differentially private, as the heart data set's policy demands: near 194 and 726.
        assert answer.keys() == {"female", "male"}
        assert abs(answer["female"] - 194) <= 40 and abs(answer["male"] - 726) <= 40
        artifacts = list(by_key)
    task_id = job.name
    assert task_id == f"heart-4-logreg-s0-{run.id}"

    # The real UI shows the run (name, state, deployment, pool) and the job's artifacts.
    screenshot = tmp_path / "ui-flow-run.png"
    started = time.monotonic()
    shows(f"{config.ui_url}/runs/flow-run/{run.id}",
          [run.name, "Completed", "nightly-heart", "flai-process"], screenshot, tmp_path / "chromium")
    timings["UI render"] = time.monotonic() - started
    BENCH_OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, BENCH_OUT / "ui-flow-run.png")
    assert artifacts, "the training job attached no artifacts"
    shows(f"{config.ui_url}/artifacts", artifacts, tmp_path / "ui-artifacts.png", tmp_path / "chromium")
    shutil.copyfile(tmp_path / "ui-artifacts.png", BENCH_OUT / "ui-artifacts.png")

    # Lineage: both rounds are on chain, each model is in IPFS.
    rounds = Ledger.open(config.data_dir / "chain", config.chain_url).rounds(keccak_id(task_id))
    assert [r.round for r in rounds] == [0, 1]
    models = {r.model_cid: KuboStore(config.ipfs_api).get(r.model_cid) for r in rounds}
    # ... and `flai lineage`, as an operator runs it, fetches, decrypts and verifies them.
    lineage = subprocess.run([tool("flai"), "lineage", task_id], env=env, capture_output=True,
                             text=True, timeout=300)
    assert lineage.returncode == 0, lineage.stdout + lineage.stderr
    assert "all 2 round(s) verified" in " ".join(lineage.stdout.split()), lineage.stdout

    # A governed job (issue 13), from its proposal to a settled, validated model: the runs the
    # governance sync starts are its linked subflow runs, in the API and in the UI.
    started = time.monotonic()
    governed_job(config, env, tmp_path)
    timings["governed job"] = time.monotonic() - started

    # Stop; stopping again is a no-op; start again: the run, the chain and the models remain.
    # A governance sync run active then (every 5 minutes on its schedule; one now) does not
    # keep `down` from stopping the stack: it is stopped and cancelled (it is interruptible).
    with prefect_api(config):
        sync = run_deployment(SYNC, timeout=0)
    started = time.monotonic()
    assert set(actions(stack.down(config.data_dir)).values()) == {Action.STOPPED, Action.NOT_RUNNING}
    timings["down"] = time.monotonic() - started
    assert set(actions(stack.down(config.data_dir)).values()) == {Action.NOT_RUNNING}
    assert not (config.data_dir / "stack" / "env").exists()
    started = time.monotonic()
    again = stack.up(config)
    timings["up again"] = time.monotonic() - started
    assert actions(again)["prefect-server"] is Action.STARTED
    with prefect_api(config), get_client(sync_client=True) as client:
        assert client.read_flow_run(run.id).state.is_completed()
        assert client.read_deployment_by_name(DEPLOYMENT).id == deployment.id
        assert client.read_flow_run(sync.id).state.type.value in ("CANCELLED", "COMPLETED")
    after = Ledger.open(config.data_dir / "chain", config.chain_url).rounds(keccak_id(task_id))
    assert after == rounds
    assert {cid: KuboStore(config.ipfs_api).get(cid) for cid in models} == models
    print("timings (s): " + ", ".join(f"{step} {seconds:.1f}" for step, seconds in timings.items()))


def governed_job(config: StackConfig, env: dict[str, str], tmp_path: Path) -> None:
    """On the running stack: the healthcare SubDAO set up and a one-round heart task proposed
    and voted through on its anvil chain (from this process); ``governance/sync`` run through
    the API starts the task's training run through its deployment, once, as its linked subflow
    run; the worker trains, validates and records it; the SubDAO accepts the model; the next
    sync settles it through ``settle/weekly`` (linked too); a provider claims its reward."""
    from prefect.client.orchestration import get_client

    from cli.dao import pass_proposal
    from contracts import Support, TaskState
    from flai.learning.config import JobSpec
    from tasks.governance import governance, validation_report
    from tasks.settlement import last_settled, settlement_of
    from tests.dao import DOMAIN, VOTERS, proposed_task, vote_on_model

    with flai_settings(config), prefect_api(config), get_client(sync_client=True) as client:
        dao = governance()
        name = f"governed-heart-{int(time.time())}"
        task_id, approval = proposed_task(name, JobSpec("heart", rounds=1))
        pass_proposal(DOMAIN, approval, dict.fromkeys(VOTERS, Support.FOR))
        assert dao.task(task_id).state is TaskState.APPROVED

        # The sync starts the training run through its deployment; the worker runs it.
        first = run_sync()
        (training,) = runs_of(client, GOVERNED)
        assert training.parameters == {"task": name}
        assert training.idempotency_key == f"{GOVERNED}/{name}"
        parent = linked_parent(client, training)
        # This sync run's, unless a scheduled one came first (a run's interval is 300 s).
        assert parent.id == first.id or "auto-scheduled" in parent.tags, parent
        # (That a second sync finds the same run: tests/fl/test_governed_job.py.)
        training = finished(client, training.id, timeout_s=1800)
        assert training.state.is_completed(), training.state
        assert training.name == name  # its flow_run_name, given once it started
        found = dao.task(task_id)
        assert found.state is TaskState.TRAINED and found.model_cid and found.report_cid
        assert validation_report(found).model_cid == found.model_cid

        # The next sync opens the validation proposal (once: a scheduled one may have).
        run_sync()
        validation = dao.stage_proposal(task_id)
        assert validation is not None and validation.id != approval
        vote_on_model(task_id)  # finds that proposal; the voters pass it
        assert dao.task(task_id).state is TaskState.ACCEPTED

        # The next sync settles it through settle/weekly, linked to a sync run too.
        run_sync()
        (settlement,) = [r for r in runs_of(client, SETTLE) if name in (r.idempotency_key or "")]
        assert linked_parent(client, settlement).deployment_id == parent.deployment_id
        settlement = finished(client, settlement.id, timeout_s=900)
        assert settlement.state.is_completed(), settlement.state
        assert dao.task(task_id).state is TaskState.SETTLED
        assert [r.id for r in runs_of(client, GOVERNED)] == [training.id]
        paid = settlement_of(dao.ledger, last_settled(dao.ledger)).paid
        assert paid, "the settlement paid no provider"

    # A provider claims its reward, as an operator would.
    provider = paid[0].provider
    claim = subprocess.run([tool("flai"), "rewards", "claim", provider], env=env,
                           capture_output=True, text=True, timeout=300)
    assert claim.returncode == 0, claim.stdout + claim.stderr
    assert f"to {provider}" in " ".join(claim.stdout.split()), claim.stdout

    # The real UI: the sync run's page logs the training run it started (task name and run id)
    # and draws it as a subflow in its run graph (a canvas: in the screenshot, not the text).
    screenshot = tmp_path / "ui-governed-run.png"
    shows(f"{config.ui_url}/runs/flow-run/{parent.id}",
          [parent.name, "sync", f"{training.name}: training started: {training.id}"],
          screenshot, tmp_path / "chromium")
    BENCH_OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, BENCH_OUT / "ui-governed-run.png")


def run_sync(timeout_s: float = 600):
    """One ``governance/sync`` run through the API, to its end. The deployment runs one at a
    time and cancels a new run that finds one running (a scheduled one): then it runs again."""
    from prefect.deployments import run_deployment

    for _ in range(3):
        run = run_deployment(SYNC, timeout=timeout_s, poll_interval=1)
        if run.state is None or not run.state.is_cancelled():
            break
        time.sleep(5)
    assert run.state is not None and run.state.is_completed(), run.state
    return run


def runs_of(client, deployment_name: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment = client.read_deployment_by_name(deployment_name)
    return client.read_flow_runs(deployment_filter=DeploymentFilter(
        id=DeploymentFilterId(any_=[deployment.id])))


def linked_parent(client, child):
    """The flow run that started ``child`` as its subflow run: ``run_deployment`` inside a flow
    makes a task run in the calling flow run and records it as the child's parent task run."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    assert child.parent_task_run_id is not None, f"{child.name} is no subflow run"
    parent = client.read_flow_run(client.read_task_run(child.parent_task_run_id).flow_run_id)
    children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])))
    assert child.id in [r.id for r in children]
    return parent


def finished(client, run_id, timeout_s: float):
    """The flow run once it reached a final state."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        assert time.monotonic() < deadline, f"{run.name} is {run.state} after {timeout_s} s"
        time.sleep(1)
