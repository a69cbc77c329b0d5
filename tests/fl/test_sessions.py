"""The federation's MPC session outlives computations: kept while its membership holds, formed
anew when it changes, held by one computation at a time. Real actors, real CrypTen parties."""

from __future__ import annotations

import threading

import ray
import torch

from actors import federation as fed
from tasks.secure_aggregation import SecureSession, run_secure_session


def _stage(federation: fed.Federation, contribution_id: str, values: dict[str, float]) -> None:
    """Stage ``values[provider] * ones(3)`` at each provider, as a round's update would be."""
    def put(provider, value: float) -> None:
        provider._staged[contribution_id] = torch.full((3,), value, dtype=torch.float64)

    ray.get([fed.provider(federation, name).__ray_call__.remote(put, value)
             for name, value in values.items()])


def _session_of(provider) -> str | None:
    from flai.mpc.session import current_session

    return current_session()


def _leave(provider) -> None:
    from flai.mpc.session import leave_session

    leave_session()


def _sum(federation: fed.Federation, providers: tuple[str, ...],
         contribution_id: str) -> SecureSession:
    return run_secure_session(
        federation, providers, contribution_id,
        ready=lambda p: p.can_contribute.remote(contribution_id),
        join=lambda p, session: p.join_secure_sum.remote(session, contribution_id),
        receive=lambda aggregator, session: aggregator.secure_sum.remote(session, 3))


def test_the_session_is_kept_across_computations_and_formed_anew_for_new_members(heart_federation):
    everyone = heart_federation.providers
    values = {name: float(rank + 1) for rank, name in enumerate(everyone)}
    for number in (1, 2):
        _stage(heart_federation, f"keep/{number}", values)
    first = _sum(heart_federation, everyone, "keep/1")
    second = _sum(heart_federation, everyone, "keep/2")
    assert first.session_id == second.session_id, "the same members must reuse their session"
    assert second.received.tolist() == [sum(values.values())] * 3

    fewer = everyone[:-1]
    _stage(heart_federation, "keep/3", values)
    third = _sum(heart_federation, fewer, "keep/3")
    assert third.session_id != second.session_id, "another membership forms another session"
    assert third.received.tolist() == [sum(values[name] for name in fewer)] * 3
    current = ray.get(fed.provider(heart_federation, everyone[-1]).__ray_call__.remote(
        _session_of))
    assert current == second.session_id, "a provider left out stays idle in the old session"


def test_a_failed_computation_forms_a_new_session(heart_federation):
    everyone = heart_federation.providers
    values = dict.fromkeys(everyone, 1.0)
    _stage(heart_federation, "fail/1", values)
    first = _sum(heart_federation, everyone, "fail/1")
    # A provider leaves its session on its own (as a failed protocol does at every party).
    ray.get(fed.provider(heart_federation, everyone[0]).__ray_call__.remote(_leave))
    ray.get(fed.aggregator(heart_federation).computation_ended.remote(first.session_id, False))
    _stage(heart_federation, "fail/2", values)
    second = _sum(heart_federation, everyone, "fail/2")
    assert second.session_id != first.session_id
    assert second.received.tolist() == [4.0] * 3


def test_concurrent_computations_take_turns_on_the_session(heart_federation):
    everyone = heart_federation.providers
    results: dict[str, SecureSession] = {}
    for number in range(3):
        _stage(heart_federation, f"turns/{number}", {name: float(number) for name in everyone})

    def run(number: int) -> None:
        results[f"turns/{number}"] = _sum(heart_federation, everyone, f"turns/{number}")

    threads = [threading.Thread(target=run, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert {key: session.received.tolist() for key, session in results.items()} == {
        f"turns/{number}": [4.0 * number] * 3 for number in range(3)}
