"""The flow runs that stopping or starting the stack must settle, through the Prefect API.

A run left Running (or Cancelling) by an unclean stop holds its deployment's concurrency slot:
``train/nightly-heart`` allows one run at a time, so the next night's run would wait for it
forever. Hence ``flai down`` refuses while runs are active (:func:`active`) and, when forced,
cancels them (:func:`cancel`) once the processes running them are gone; and ``flai up`` ends
the runs this stack's worker started whose process is gone (:func:`end_orphans`). Both set
terminal states with ``force``: Prefect's minimal policy still releases the slots.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from uuid import UUID

import psutil

from deployments.processes import MARKER, POLL_S
from flai.stack import FlowRunRef, StackError

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.objects import FlowRun

WORKER_LABEL = "prefect.worker.name"  # the label a Prefect worker gives the runs it starts
INTERRUPTIBLE = "interruptible"
"""A deployment tag (its runs carry it): a run that redoes its work when run again and that
runs every few minutes (``governance/sync``) does not keep ``flai down`` from stopping the
stack; ``down`` stops it with the worker and cancels it, as ``--force`` does."""
SETTLE_TIMEOUT_S = 30.0


class RunNotSettledError(StackError):
    """The server did not report a flow run in the state it was set to."""

    def __init__(self, run: FlowRunRef, wanted: str, timeout_s: float) -> None:
        super().__init__(f"flow run {run.name} ({run.id}) is not {wanted} {timeout_s:g} s after "
                         "it was set so")
        self.run = run
        self.wanted = wanted
        self.timeout_s = timeout_s


def active(api_url: str) -> tuple[list[FlowRunRef], list[FlowRunRef]]:
    """Runs that hold or are about to take a slot: Running, Pending, Cancelling, and Scheduled
    ones whose time has come (Late, or awaiting a retry); split into those ``down`` must wait
    for and those of deployments tagged :data:`INTERRUPTIBLE`, which it may stop and cancel."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    due = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
            before_=datetime.now(timezone.utc)))
    with _client(api_url) as client:
        runs = [*_busy_runs(client), *client.read_flow_runs(flow_run_filter=due)]
    return ([_ref(run) for run in runs if INTERRUPTIBLE not in run.tags],
            [_ref(run) for run in runs if INTERRUPTIBLE in run.tags])


def cancel(api_url: str, runs: list[FlowRunRef], timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Sets each run Cancelled and waits until the server reports it so; call it once nothing
    runs them any more, or their processes could still report another state."""
    from prefect.states import Cancelled

    with _client(api_url) as client:
        for run in runs:
            client.set_flow_run_state(UUID(run.id), Cancelled(message="cancelled by `flai down --force`"),
                                      force=True)
        for run in runs:
            deadline = time.monotonic() + timeout_s
            while not client.read_flow_run(UUID(run.id)).state.is_cancelled():
                if time.monotonic() > deadline:
                    raise RunNotSettledError(run, "Cancelled", timeout_s)
                time.sleep(POLL_S)


def end_orphans(api_url: str, worker_name: str, stack_marker: str, worker_alive: bool) -> list[FlowRunRef]:
    """Ends the active runs that worker ``worker_name`` started and nothing runs any more, and
    their subflow runs: Cancelling ones Cancelled (as asked), the others Crashed.

    A run is orphaned when its process (``infrastructure_pid``) is gone, or is now a process
    that does not carry ``stack_marker`` (the pid was reused); a run the worker had not started
    yet (no pid) is orphaned only if the worker is gone too.
    """
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.states import Cancelled, Crashed

    ended: list[FlowRunRef] = []
    with _client(api_url) as client:
        orphans = [run for run in _busy_runs(client)
                   if run.labels.get(WORKER_LABEL) == worker_name
                   and _orphaned(run.infrastructure_pid, stack_marker, worker_alive)]
        while orphans:
            for run in orphans:
                message = "its process is gone (found by `flai up`)"
                state = Cancelled(message=message) if run.state.is_cancelling() else Crashed(message=message)
                client.set_flow_run_state(run.id, state, force=True)
                ended.append(_ref(run))
            # Subflow runs execute in their parent's process: they went with it.
            children = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(
                any_=[run.id for run in orphans]))
            orphans = _busy_runs(client, children)
    return ended


def _orphaned(infrastructure_pid: str | None, stack_marker: str, worker_alive: bool) -> bool:
    if not infrastructure_pid:
        return not worker_alive
    try:
        return psutil.Process(int(infrastructure_pid)).environ().get(MARKER) != stack_marker
    except (ValueError, psutil.Error):  # gone, a zombie, or another user's: not this stack's
        return True


def _busy_runs(client: SyncPrefectClient, within: FlowRunFilter | None = None) -> list[FlowRun]:
    """Running, Pending and Cancelling runs (of those ``within`` selects)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    states = FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]))
    flow_run_filter = (within or FlowRunFilter()).model_copy(update={"state": states})
    return client.read_flow_runs(flow_run_filter=flow_run_filter)


def _client(api_url: str) -> SyncPrefectClient:
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api_url)


def _ref(run: FlowRun) -> FlowRunRef:
    return FlowRunRef(str(run.id), run.name, run.state.name if run.state else "unknown")
