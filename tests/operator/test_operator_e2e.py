"""The operator's day, end to end, on real parts: start the stack, deploy from prefect.yaml,
run a training job through the Prefect API, watch it in the real UI, stop and restart the
stack, and find the run, the chain's lineage and the models on IPFS still there."""

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
from tests.operator.support import cli_env, prefect_api

DEPLOYMENT = "train/nightly-heart"
QUERY = "query/ad-hoc"
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
        run = run_deployment(DEPLOYMENT, parameters={"rounds": 2}, timeout=900)
        timings["training run (2 rounds)"] = time.monotonic() - started
        assert run.state is not None and run.state.is_completed(), run.state
        assert run.name == "heart-logreg-2r-s0"
        (job,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
        # An ad hoc federated query through its deployment: the answer and its disclosure
        # report come back, and are attached to the run.
        started = time.monotonic()
        query = run_deployment(QUERY, parameters={
            "sql": "SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex"}, timeout=600)
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

    # Stop; stopping again is a no-op; start again: the run, the chain and the models remain.
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
    after = Ledger.open(config.data_dir / "chain", config.chain_url).rounds(keccak_id(task_id))
    assert after == rounds
    assert {cid: KuboStore(config.ipfs_api).get(cid) for cid in models} == models
    print("timings (s): " + ", ".join(f"{step} {seconds:.1f}" for step, seconds in timings.items()))
