"""The governance sync: what the DAOs decided on chain becomes flow runs, each exactly once.

One run reads every governed task's state from ``TaskRegistry`` and moves each one on:

- **approved** → its training run starts (``governed-training/on-approval``), under an
  idempotency key made of the task's name: Prefect answers a second request with the run it
  already made, so a re-run of the sync, or a retry of its step, starts nothing twice;
- **trained** → the validation proposal opens at the task's SubDAO (the canonical proposal:
  opening it again finds the one that exists);
- **defeated** (its approval or validation proposal lost, missed quorum or expired) → closed
  on chain, which refunds the modeler's pool;
- **accepted** → settlement runs (``settle/weekly``), keyed by the accepted tasks: it releases
  their pools and pays their contributors.

Started runs are the sync run's linked subflow runs in the UI. The ``governance/sync``
deployment runs it on a schedule. ``inline=True`` runs the training and settlement as plain
subflows of this process instead (the demo, on the embedded chain, has no worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment

from contracts import GovernedTask, ProposalState, TaskState
from flai.reporting import artifact_key
from tasks.governance import governance

TRAINING_DEPLOYMENT = "governed-training/on-approval"
SETTLEMENT_DEPLOYMENT = "settle/weekly"
CLOSED_PROPOSALS = (ProposalState.DEFEATED, ProposalState.EXPIRED)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2)
def read_tasks() -> list[GovernedTask]:
    """Every task the registry knows, with its state now."""
    return governance().tasks()


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2)
def open_validation(found: GovernedTask) -> int:
    """The canonical validation proposal of a trained task: opened once, found after."""
    return governance().propose_validation(found.task_id)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2)
def close_if_defeated(found: GovernedTask) -> bool:
    """Close a task whose current proposal was defeated or expired (refunding its pool)."""
    dao = governance()
    proposal = dao.stage_proposal(found.task_id)
    if proposal is None or proposal.state not in CLOSED_PROPOSALS:
        return False
    dao.close_defeated(found.task_id)
    return True


# The training and settlement flows are imported only to run inline: a sync that starts
# deployments loads neither torch nor the actors.
def start_training(found: GovernedTask, inline: bool) -> str:
    if inline:
        from flows.governed_training import governed_training

        governed_training(found.name)
        return "ran inline"
    run = run_deployment(TRAINING_DEPLOYMENT, parameters={"task": found.name}, timeout=0,
                         idempotency_key=f"{TRAINING_DEPLOYMENT}/{found.name}")
    return str(run.id)


def start_settlement(accepted: Sequence[GovernedTask], inline: bool) -> str:
    if inline:
        from flows.reward_settlement import reward_settlement

        settlement = reward_settlement()
        return f"epoch {settlement.epoch}" if settlement else "nothing to settle"
    key = ",".join(sorted(found.name for found in accepted))
    run = run_deployment(SETTLEMENT_DEPLOYMENT, parameters={"epoch": None}, timeout=0,
                         idempotency_key=f"{SETTLEMENT_DEPLOYMENT}/{key}")
    return str(run.id)


@flow(name="governance")
def governance_sync(inline: bool = False) -> dict[str, Any]:
    """Move every governed task on by one step (see the module); returns what it did."""
    log = get_run_logger()
    actions: dict[str, str] = {}
    # Approved tasks: their training runs, once each.
    for found in read_tasks():
        if found.state is TaskState.APPROVED:
            actions[found.name] = f"training started: {start_training(found, inline)}"
    # Read again: an inline run has trained its task by now.
    tasks = read_tasks()
    for found in tasks:
        if found.state in (TaskState.PROPOSED, TaskState.TRAINED) and close_if_defeated(found):
            actions[found.name] = "proposal defeated: closed, pool refunded"
        elif found.state is TaskState.TRAINED:
            actions[found.name] = f"validation proposal {open_validation(found)}"
    accepted = [found for found in tasks if found.state is TaskState.ACCEPTED]
    if accepted:
        settled_by = start_settlement(accepted, inline)
        for found in accepted:
            actions[found.name] = f"settlement: {settled_by}"
    for name, action in actions.items():
        log.info("%s: %s", name, action)
    if actions:
        create_table_artifact([{"task": name, "action": action} for name, action in actions.items()],
                              key=artifact_key("governance-sync", "actions"),
                              description="What this sync run started, proposed or closed.")
    return actions
