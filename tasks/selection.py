"""Select this round's participants: the federation's providers that answer now.

Each answer names the provider's incarnation (``Incarnation.boot_id``). The round holds on to
the incarnations it selected: a provider that Ray restarted during the round has lost what
it staged, so it is a dropout for the rest of the round and rejoins at the next selection.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.settings import get_settings


RESTART_POLL_S = 0.25  # between pings of a provider that Ray is restarting


@dataclass(frozen=True)
class Selection:
    participants: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)
    incarnations: dict[str, str] = field(default_factory=dict)  # provider -> boot id answering


def reachable(federation: fed.Federation, names: tuple[str, ...], timeout_s: float) -> Selection:
    """The named providers that answer a ping within ``timeout_s``; the rest, with why.

    Ray fails a call to an actor it is restarting at once, so such a provider is asked again
    until ``timeout_s`` is up: a quick restart does not cost it the round.
    """
    deadline = time.monotonic() + timeout_s
    answered, failed, asking = {}, {}, names
    while True:
        got, failures = fed.collect(fed.start_calls(federation, asking, lambda p: p.ping.remote()),
                                    max(deadline - time.monotonic(), 0.0))
        answered |= got
        failed = {name: why for name, why in failed.items() if name not in got} | failures
        asking = tuple(name for name, why in failures.items()
                       if why.kind is fed.FailureKind.UNAVAILABLE)
        if not asking or time.monotonic() + RESTART_POLL_S >= deadline:
            break
        time.sleep(RESTART_POLL_S)
    return Selection(tuple(name for name in names if name in answered),
                     {name: str(why) for name, why in failed.items()},
                     {name: pong.boot_id for name, pong in answered.items()})


def departed(federation: fed.Federation, incarnations: Mapping[str, str], names: tuple[str, ...],
             timeout_s: float) -> dict[str, str]:
    """Which of ``names`` are no longer the incarnation in ``incarnations``, with why: gone,
    silent, or restarted (and so without anything staged before)."""
    now = reachable(federation, names, timeout_s)
    return now.dropped | {name: "restarted" for name, boot_id in now.incarnations.items()
                          if boot_id != incarnations.get(name)}


@task(cache_policy=NO_CACHE)
def select_participants(federation: fed.Federation, min_stake: int = 0) -> Selection:
    """The providers that answer now and, for a task that requires it, have bonded at least
    ``min_stake`` (FLAI base units) in ``ProviderStaking``."""
    found = reachable(federation, federation.providers, get_settings().ping_timeout_s)
    selection = replace(found, dropped={name: f"{why} at selection"
                                        for name, why in found.dropped.items()})
    if min_stake:
        selection = _staked(selection, min_stake)
    if selection.dropped:
        get_run_logger().warning("dropped before the round: %s", selection.dropped)
    return selection


def _staked(selection: Selection, min_stake: int) -> Selection:
    """``selection`` without the providers whose bonded stake is below ``min_stake``."""
    from tasks.chain import ledger
    from tasks.settlement import provider_accounts

    chain, accounts = ledger(), provider_accounts(selection.participants)
    short = {name: f"stake below the task's minimum of {min_stake / 10**18:g} FLAI"
             for name in selection.participants if not chain.eligible(accounts[name], min_stake)}
    return replace(selection,
                   participants=tuple(name for name in selection.participants if name not in short),
                   dropped=selection.dropped | short)
