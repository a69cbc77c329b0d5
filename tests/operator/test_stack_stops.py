"""Stopping the stack while a flow run is active, cleanly or not, leaves no run holding its
deployment's concurrency slot and no process behind.

One stack, one deployment of a flow that holds on (``stuck_flow.py``, limited to one run at
a time like ``train/nightly-heart``): ``flai down`` refuses while its run is active; an
unclean stop (worker and run killed) leaves the run Running until ``flai up`` ends it,
Crashed, which lets the next run start; ``flai down --force`` cancels that one, and nothing
carrying the stack's marker survives, the run's Ray and a daemonised grandchild included.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from uuid import UUID

import psutil
import pytest
from typer.testing import CliRunner

import cli.stack  # noqa: F401  (registers up/down/status on the app)
from deployments import stack
from deployments.processes import MARKER, Managed, marked, tree
from cli import app
from flai.stack import PROJECT_DIR, Action, StackConfig
from tests.operator.support import free_ports, prefect_api

RUN_START_TIMEOUT_S = 180.0  # the worker polls every 2 s; the run imports Prefect and starts Ray


def flai(*args: str):
    """The CLI, on a terminal wide enough that table cells are not folded."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"}, catch_exceptions=False)


def deploy_stuck(client) -> UUID:
    return client.create_deployment(
        flow_id=client.create_flow_from_name("stuck"), name="stuck",
        entrypoint="tests/operator/stuck_flow.py:stuck", work_pool_name=stack.WORK_POOL,
        path=str(PROJECT_DIR), concurrency_limit=1,
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_DIR)}}])


def start_run(client, deployment: UUID, data_dir: Path):
    """A run of the deployment, once its flow and every process below it run."""
    run = client.create_flow_run_from_deployment(deployment)
    ready = data_dir / f"stuck-{run.id}.ready"
    deadline = time.monotonic() + RUN_START_TIMEOUT_S
    while not ready.exists():
        state = client.read_flow_run(run.id).state
        assert not state.is_final(), f"{run.name} ended {state.name}: {state.message}"
        assert time.monotonic() < deadline, f"{run.name} still {state.name}; see {data_dir / 'stack'}"
        time.sleep(1.0)
    return run


def state_of(client, run) -> str:
    return client.read_flow_run(run.id).state.name


def stored_state(data_dir: Path, run) -> str:
    """A run's state as the stopped server left it in its database."""
    with sqlite3.connect(data_dir / "prefect" / "prefect.db") as db:
        (name,) = db.execute("SELECT state_name FROM flow_run WHERE id = ?", [str(run.id)]).fetchone()
    return name


@pytest.mark.slow
def test_stops_settle_the_runs_and_leave_no_process(cli_data_dir: Path) -> None:
    from prefect.client.orchestration import get_client

    prefect_port, anvil_port = free_ports(2)
    config = StackConfig(cli_data_dir, prefect_port=prefect_port, anvil_port=anvil_port)
    up = ["up", "--prefect-port", str(prefect_port), "--anvil-port", str(anvil_port)]
    processes: dict[int, psutil.Process] = {}
    try:
        assert flai(*up).exit_code == 0
        with prefect_api(config), get_client(sync_client=True) as client:
            deployment = deploy_stuck(client)
            first = start_run(client, deployment, cli_data_dir)

            refused = flai("down")
            assert refused.exit_code == 1
            assert first.name in refused.output and "nothing was stopped" in refused.output
            parts = {r.name: r.action for r in stack.status(config)}
            assert {parts[name] for name in (stack.SERVER, stack.WORKER, stack.ANVIL)} == {Action.RUNNING}

            # An unclean stop: the worker and everything below it die without a word.
            for process in tree(Managed(stack.WORKER, config.stack_dir).process()):
                process.kill()
            assert state_of(client, first) == "Running"

            restarted = flai(*up)
            assert restarted.exit_code == 0, restarted.output
            assert state_of(client, first) == "Crashed"
            assert f"ended 1 run(s) whose process was gone: {first.name}" in restarted.output
            second = start_run(client, deployment, cli_data_dir)  # the slot was released
            processes = {p.pid: p for p in marked(str(cli_data_dir))}
            run_process = int(client.read_flow_run(second.id).infrastructure_pid)
            assert run_process in processes
            assert {"raylet", "gcs_server"} <= {p.name() for p in processes.values()}

        forced = flai("down", "--force")
        assert forced.exit_code == 0, forced.output
        assert "leftovers" in forced.output  # the two runs' escaped grandchildren
        assert stored_state(cli_data_dir, second) == "Cancelled"
    finally:
        stack.down(cli_data_dir, force=True)
    survivors = [p for p in processes.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors and not marked(str(cli_data_dir)), survivors
    assert not list((cli_data_dir / "stack").glob("*.pid")) and not list(cli_data_dir.glob("chain/*.pid"))
    assert MARKER not in dict(psutil.Process().environ())  # the sweep spared this process
