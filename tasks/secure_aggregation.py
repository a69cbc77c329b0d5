"""Secure computations over the providers' staged values; the aggregator alone learns the result.

A session in which a party dies is abandoned whole and re-run with the parties still alive,
as long as ``min_providers`` remain. A session never resumes mid-collective.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray.actor import ActorHandle
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.mpc.session import Triples
from flai.settings import get_settings
from tasks.selection import reachable


class RoundFailed(RuntimeError):
    """Too few providers remain for a private aggregate."""


@dataclass(frozen=True)
class SecureSum:
    total: torch.Tensor  # the revealed sum, known to the aggregator party only
    parties: tuple[str, ...]
    seconds: float
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecureSession:
    """What the aggregator received from one completed session, and who took part."""

    received: Any
    parties: tuple[str, ...]
    seconds: float
    dropped: dict[str, str] = field(default_factory=dict)


def run_secure_session(federation: fed.Federation, providers: tuple[str, ...],
                       contribution_id: str, *,
                       ready: Callable[[ActorHandle], ray.ObjectRef],
                       join: Callable[[ActorHandle, ray.ObjectRef], ray.ObjectRef],
                       receive: Callable[[ActorHandle, ray.ObjectRef], ray.ObjectRef],
                       triples: Triples = Triples.TFP, rerun: bool = True) -> SecureSession:
    """Run one secure computation over ``providers``, re-run whole without any that die
    (unless ``rerun`` is False: then a failed session fails the computation).

    ``ready`` asks a provider whether it holds an unspent ``contribution_id`` (asked before a
    session opens, so a refusal costs nothing); ``join`` makes it take part in the session;
    ``receive`` makes the aggregator take part and return what it learns. With
    ``Triples.TTP`` the federation's dealer joins too.
    """
    settings = get_settings()
    remaining, dropped = tuple(providers), {}
    while True:
        if len(remaining) < settings.min_providers:
            raise RoundFailed(
                f"{len(remaining)} provider(s) left for {contribution_id}, need "
                f"{settings.min_providers}; dropped: {dropped}")
        answers, lost = fed.call_each(federation, remaining, ready, settings.ping_timeout_s)
        if not all(answers.values()):
            refusing = sorted(name for name, ok in answers.items() if not ok)
            raise RoundFailed(f"{refusing} hold no unspent contribution {contribution_id}")
        if lost:
            dropped |= lost
            remaining = tuple(name for name in remaining if name in answers)
            continue
        aggregator = fed.aggregator(federation)
        session = aggregator.open_session.remote(remaining, triples)
        started = time.perf_counter()
        refs = fed.start_calls(federation, remaining, lambda p: join(p, session))
        refs[fed.AGGREGATOR] = receive(aggregator, session)
        if triples is Triples.TTP:
            refs[fed.DEALER] = fed.dealer(federation).deal.remote(session)
        results, failed = fed.gather(refs, timeout_s=2 * settings.mpc_timeout_s + 10)
        if not failed:
            return SecureSession(results[fed.AGGREGATOR], remaining,
                                 time.perf_counter() - started, dropped)
        if not rerun:
            raise RoundFailed(f"secure session {contribution_id} failed: {sorted(failed)}")
        # Which providers are gone? Those still alive rejoin a fresh session.
        alive = reachable(federation, remaining, settings.ping_timeout_s)
        if not alive.dropped:
            # Everyone is alive, so the failure is not a dropout: re-running could reveal a
            # second result over the same values. Stop instead.
            raise RoundFailed(f"secure session {contribution_id} failed with every provider "
                              f"alive: {failed}")
        dropped |= alive.dropped
        remaining = alive.participants


def secure_sum_over(federation: fed.Federation, providers: tuple[str, ...], contribution_id: str,
                    size: int) -> SecureSum:
    """The sum of ``contribution_id`` over ``providers``, re-run without any that die."""
    summed = run_secure_session(
        federation, providers, contribution_id,
        ready=lambda p: p.can_contribute.remote(contribution_id),
        join=lambda p, session: p.join_secure_sum.remote(session, contribution_id),
        receive=lambda aggregator, session: aggregator.secure_sum.remote(session, size))
    return SecureSum(summed.received, summed.parties, summed.seconds, summed.dropped)


@task(cache_policy=NO_CACHE)
def secure_aggregate(federation: fed.Federation, contributors: tuple[str, ...],
                     contribution_id: str, size: int) -> SecureSum:
    summed = secure_sum_over(federation, contributors, contribution_id, size)
    if summed.dropped:
        get_run_logger().warning("dropped during secure aggregation: %s", summed.dropped)
    return summed
