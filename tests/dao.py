"""Governed tasks for tests, on the session's chain: the healthcare SubDAO and three voters
(set up as ``flai demo`` does), a task proposed and approved, its model accepted."""

from __future__ import annotations

from cli.dao import governance_as, hold_vote, pass_proposal, submit_task
from cli.demo import MODELER, POOL, set_up_governance
from contracts import Support
from flai.learning.config import JobSpec

DOMAIN = "healthcare"
VOTERS = ("voter-a", "voter-b", "voter-c")


def proposed_task(name: str, spec: JobSpec = JobSpec("heart", rounds=2)) -> tuple[bytes, int]:
    """Task ``name`` proposed by the modeler (granted the pool first) with :data:`POOL`
    escrowed; returns its id and its approval proposal."""
    set_up_governance(governance_as(None), DOMAIN, list(VOTERS))
    return submit_task(governance_as(MODELER), name, DOMAIN, spec, POOL)


def approved_task(name: str, spec: JobSpec = JobSpec("heart", rounds=2)) -> bytes:
    """:func:`proposed_task`, approved by the voters through the SubDAO's timelock."""
    task_id, proposal = proposed_task(name, spec)
    pass_proposal(DOMAIN, proposal, dict.fromkeys(VOTERS, Support.FOR))
    return task_id


def vote_on_model(task_id: bytes, support: Support = Support.FOR) -> None:
    """The voters vote on a trained task's validation proposal; it is executed (the model
    accepted) when they vote for it, and left defeated otherwise."""
    proposal = governance_as(None).propose_validation(task_id)
    votes = dict.fromkeys(VOTERS, support)
    (pass_proposal if support is Support.FOR else hold_vote)(DOMAIN, proposal, votes)
