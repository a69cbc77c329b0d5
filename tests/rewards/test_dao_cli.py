"""`flai dao` from a shell, on the session's embedded chain: members join, a SuperDAO proposal
creates a SubDAO, a modeler proposes a task, members vote, the timelock queues and executes
it, and `status` shows where every proposal stands; wrong input is one line and exit code."""

from __future__ import annotations

import re
import uuid

from typer.testing import CliRunner

from cli import app
from contracts import TaskState
from tasks.governance import governance, governed_task

runner = CliRunner()


def flai(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_a_task_through_the_cli() -> None:
    tag = uuid.uuid4().hex[:6]
    domain, members = f"finance-{tag}", [f"member-{tag}-{i}" for i in range(3)]
    for member in members:
        assert "badge held" in flai("dao", "join", member, "--flai", "100")
    flai("dao", "join", f"modeler-{tag}", "--flai", "600", "--no-badge")
    flai("dao", "join", "treasury-voter-" + tag, "--flai", "5000", "--no-badge")

    # A SuperDAO proposal creates the SubDAO; the token-weighted vote of a FLAI holder carries it.
    created = flai("dao", "create-subdao", domain, "--weights", "quadratic")
    (proposal,) = re.findall(r"SuperDAO proposal (\d+)", created)
    flai("dao", "advance", "--blocks", "2")
    # A proposal is named by its id, or by a unique prefix of it.
    assert "voted for" in flai("dao", "vote", proposal[:12], "--dao", "super", "--as", "treasury-voter-" + tag)
    flai("dao", "advance", "--blocks", "25")
    flai("dao", "queue", proposal, "--dao", "super")
    flai("dao", "advance", "--seconds", "61", "--blocks", "1")
    assert "executed" in flai("dao", "execute", proposal, "--dao", "super")

    # The modeler proposes a task; one member for, two against: defeated, so it can be
    # neither queued nor executed; closing it refunds the modeler.
    task = f"cli-task-{tag}"
    proposed = flai("dao", "propose-task", task, "--domain", domain, "--pool", "500",
                    "--as", f"modeler-{tag}")
    (approval,) = re.findall(rf"proposed to the {domain} DAO: proposal (\d+)", proposed)
    flai("dao", "advance", "--blocks", "2")
    for member, support in zip(members, ("for", "against", "against"), strict=True):
        flai("dao", "vote", approval, "--dao", domain, "--as", member, "--support", support)
    again = flai("dao", "vote", approval, "--dao", domain, "--as", members[0], code=1)
    assert "already voted" in again.lower() or "AlreadyCastVote" in again
    flai("dao", "advance", "--blocks", "25")
    assert "GovernorUnexpectedProposalState" in flai("dao", "queue", approval, "--dao", domain, code=1)
    status = flai("dao", "status", "--dao", domain)
    assert f"Proposals of the {domain} DAO" in status and "defeated" in status
    assert task in status and "proposed" in status
    governance().close_defeated(governed_task(task).task_id)
    assert governed_task(task).state is TaskState.REJECTED
    assert "rejected" in flai("dao", "status", "--dao", domain)

    # Wrong input: one red line, exit code 1 or 2, no traceback.
    assert "no proposal" in flai("dao", "vote", "999999", "--dao", domain, "--as", members[0], code=1)
    assert "for, against or abstain" in flai("dao", "vote", approval, "--dao", domain,
                                             "--support", "maybe", code=2)
