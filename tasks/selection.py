"""Select this round's participants: the federation's providers that answer now."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.settings import get_settings


@dataclass(frozen=True)
class Selection:
    participants: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)


def reachable(federation: fed.Federation, names: tuple[str, ...], timeout_s: float) -> Selection:
    """The named providers that answer a ping within ``timeout_s``; the rest, with why."""
    answered, dropped = fed.call_each(federation, names, lambda p: p.ping.remote(), timeout_s)
    return Selection(tuple(name for name in names if name in answered), dropped)


@task(cache_policy=NO_CACHE)
def select_participants(federation: fed.Federation) -> Selection:
    selection = reachable(federation, federation.providers, get_settings().ping_timeout_s)
    if selection.dropped:
        get_run_logger().warning("dropped before the round: %s", selection.dropped)
    return selection
