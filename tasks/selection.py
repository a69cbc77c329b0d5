"""Select this round's participants: the federation's providers that answer now."""

from __future__ import annotations

from dataclasses import dataclass, field

import ray
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.settings import get_settings


@dataclass(frozen=True)
class Selection:
    participants: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)


def reachable(federation: fed.Federation, names: tuple[str, ...], timeout_s: float) -> Selection:
    """Ping every named provider at once; those that fail or stay silent are dropped."""
    pings, dropped = {}, {}
    for name in names:
        try:
            pings[name] = fed.provider(federation, name).ping.remote()
        except ValueError:
            dropped[name] = "not running"
    ready, _ = ray.wait(list(pings.values()), num_returns=len(pings), timeout=timeout_s)
    alive = []
    for name, ref in pings.items():
        if ref not in ready:
            dropped[name] = f"no answer within {timeout_s:g} s"
            continue
        try:
            ray.get(ref)
            alive.append(name)
        except ray.exceptions.RayError as error:
            dropped[name] = f"unreachable: {type(error).__name__}"
    return Selection(tuple(alive), dropped)


@task(cache_policy=NO_CACHE)
def select_participants(federation: fed.Federation) -> Selection:
    selection = reachable(federation, federation.providers, get_settings().ping_timeout_s)
    if selection.dropped:
        get_run_logger().warning("dropped before the round: %s", selection.dropped)
    return selection
