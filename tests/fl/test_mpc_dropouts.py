"""Providers killed inside a secure-sum session: dropouts of that session, not of the job.

The kill is deterministic: from the test, the victim's own process is told to stall in its
n-th secure sum, after the session's rendezvous and before its masked value leaves, and to
say so through a file; the test then kills it while the session waits for it.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest
import ray
from ray.actor import ActorHandle

from actors import federation as fed
from contracts import keccak_id
from flows.fl_training import TrainingJob, fl_training
from tasks.lineage import ledger, round_transactions

pytestmark = pytest.mark.slow

# A provider's secure sums in a round, in order: its update, then its evaluation counts.
SESSIONS = {"secure aggregation": 1, "federated evaluation": 2}


def _stall_in_secure_sum(provider, nth: int, signal: str) -> None:
    """Run in the provider's process: its ``nth`` secure sum from now touches ``signal`` and
    stalls inside the session. A restarted incarnation imports the real one again."""
    import actors.provider as module

    real, calls = module.secure_sum, itertools.count(1)

    def stalling(value):
        if next(calls) == nth:
            Path(signal).touch()
            time.sleep(600)
        return real(value)

    module.secure_sum = stalling


def _arm(handle: ActorHandle, nth: int, signal: Path, no_restart: bool) -> threading.Thread:
    """Make the provider's ``nth`` secure sum from now stall, and kill it once it does."""
    ray.get(handle.__ray_call__.remote(_stall_in_secure_sum, nth, str(signal)))

    def kill() -> None:
        while not signal.exists():
            time.sleep(0.02)
        ray.kill(handle, no_restart=no_restart)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _answering(handle: ActorHandle, within_s: float = 60.0) -> str:
    """The boot id of the incarnation answering once Ray has restarted the actor."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return ray.get(handle.ping.remote(), timeout=within_s).boot_id
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("step", list(SESSIONS))
def test_providers_killed_inside_a_session_drop_out_and_the_job_completes(
        prefect_server, heart_federation, tmp_path, step):
    """Round 1: one provider is killed in ``step``'s session and Ray restarts it; round 2:
    another is killed there for good; round 3 goes on with whoever is back."""
    restarted, killed = heart_federation.providers[1], heart_federation.providers[2]
    handles = {name: fed.provider(heart_federation, name) for name in (restarted, killed)}
    first_boot = ray.get(handles[restarted].ping.remote()).boot_id
    killers = [_arm(handles[restarted], SESSIONS[step], tmp_path / "restarted", no_restart=False)]

    def after_round(result) -> None:
        if result.round_number == 1:
            # How fast Ray restarts an actor is not under test; that it rejoins once back is.
            assert _answering(handles[restarted]) != first_boot
            killers.append(_arm(handles[killed], SESSIONS[step], tmp_path / "killed",
                                no_restart=True))

    task_id = f"{heart_federation.name}-killed-in-{step.replace(' ', '-')}"
    result = fl_training(TrainingJob(task_id, heart_federation, rounds=3), on_round=after_round)

    for killer in killers:
        killer.join(timeout=5)
        assert not killer.is_alive()
    first, second, third = result.rounds
    # Each named once, in one line, with where it happened; nobody else dropped.
    assert first.dropped == {
        restarted: f"was unreachable (restarting) during {step} (session 1 of round 1)"}
    assert second.dropped == {killed: f"died during {step} (session 1 of round 2)"}
    assert third.dropped == {killed: "not running at selection"}
    # Killed before its masked update left, a provider is not in that round's model; killed
    # in evaluation, its update is, and the evaluation was re-run over the others.
    in_model = step == "federated evaluation"
    assert (restarted in first.participants, killed in second.participants) == (in_model, in_model)
    # The restarted provider is a new incarnation, back from the next round on.
    assert restarted in second.participants and restarted in third.participants
    # The survivors' contributions were spent when the re-run's sum was accepted.
    assert not ray.get(fed.provider(heart_federation, heart_federation.providers[0])
                       .can_contribute.remote(f"{task_id}/round-1/update"))
    # Each round recorded on chain exactly once.
    assert ledger().round_count(keccak_id(task_id)) == 3
    assert sorted(round_transactions(ledger(), task_id)) == [0, 1, 2]
