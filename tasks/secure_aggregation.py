"""Secure summation of the providers' staged values; the aggregator alone learns the sum.

A session in which a party dies is abandoned whole and re-run with the parties still alive,
as long as ``min_providers`` remain. A session never resumes mid-collective.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
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


def secure_sum_over(federation: fed.Federation, providers: tuple[str, ...], contribution_id: str,
                    size: int) -> SecureSum:
    """The sum of ``contribution_id`` over ``providers``, re-run without any that die."""
    settings = get_settings()
    remaining, dropped = tuple(providers), {}
    while True:
        if len(remaining) < settings.min_providers:
            raise RoundFailed(
                f"{len(remaining)} provider(s) left for {contribution_id}, need "
                f"{settings.min_providers}; dropped: {dropped}")
        ready, lost = fed.call_each(federation, remaining,
                                    lambda p: p.can_contribute.remote(contribution_id),
                                    settings.ping_timeout_s)
        if not all(ready.values()):
            refusing = sorted(name for name, ok in ready.items() if not ok)
            raise RoundFailed(f"{refusing} hold no unspent contribution {contribution_id}")
        if lost:
            dropped |= lost
            remaining = tuple(name for name in remaining if name in ready)
            continue
        aggregator = fed.aggregator(federation)
        session = aggregator.open_session.remote(remaining)
        started = time.perf_counter()
        refs = fed.start_calls(federation, remaining,
                                lambda p: p.join_secure_sum.remote(session, contribution_id))
        refs[fed.AGGREGATOR] = aggregator.secure_sum.remote(session, size)
        results, failed = fed.gather(refs, timeout_s=2 * settings.mpc_timeout_s + 10)
        if not failed:
            return SecureSum(results[fed.AGGREGATOR], remaining, time.perf_counter() - started,
                             dropped)
        # Which providers are gone? Those still alive rejoin a fresh session.
        alive = reachable(federation, remaining, settings.ping_timeout_s)
        if not alive.dropped:
            # Everyone is alive, so the failure is not a dropout: re-running could reveal a
            # second sum over the same values. Stop instead.
            raise RoundFailed(f"secure sum {contribution_id} failed with every provider alive: {failed}")
        dropped |= alive.dropped
        remaining = alive.participants


@task(cache_policy=NO_CACHE)
def secure_aggregate(federation: fed.Federation, contributors: tuple[str, ...],
                     contribution_id: str, size: int) -> SecureSum:
    summed = secure_sum_over(federation, contributors, contribution_id, size)
    if summed.dropped:
        get_run_logger().warning("dropped during secure aggregation: %s", summed.dropped)
    return summed
