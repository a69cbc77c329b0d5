"""Secure computations over the providers' staged values; the aggregator alone learns the result.

A provider that dies, is restarted or stalls inside a session is a dropout of that session:
the session is abandoned whole and re-run once more without it, as long as ``min_providers``
remain. A session never resumes mid-collective. Whether a session succeeded is the
aggregator's answer alone: once it holds the result, the result stands, whoever fails
afterwards, since a re-run over fewer parties would let it difference two sums.

A secure sum's contributions are spent only when its result is accepted: providers keep
their staged values through failed sessions, and the round tells the parties of the session
it accepts to spend theirs (``Provider.accept``).

Sessions outlive computations: the aggregator keeps one open per membership, and every
computation over the same parties runs in it while the last one ended cleanly at every party
(``actors.aggregator``). A computation holds the session alone; another waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray
from ray.actor import ActorHandle
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from actors.reports import OpenedSession, SessionBusy
from flai.mpc.session import MpcSession, wait_listening
from flai.settings import Settings, get_settings
from tasks.selection import departed, reachable

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class RoundFailed(RuntimeError):
    """A private aggregate could not be computed: too few providers remain, or a session
    failed with no provider to blame (re-running it would not help)."""

    def __init__(self, contribution_id: str, problem: str, dropped: Mapping[str, str]) -> None:
        listed = "; ".join(f"{name}: {reason}" for name, reason in dropped.items())
        super().__init__(f"{contribution_id}: {problem}" + (f"; dropped: {listed}" if listed else ""))
        self.contribution_id = contribution_id
        self.problem = problem
        self.dropped = dict(dropped)


@dataclass(frozen=True)
class Step:
    """What a session computes, to say where a dropout happened."""

    name: str = "a secure computation"
    round_number: int | None = None

    def during(self, session: int) -> str:
        """E.g. ``during secure aggregation (session 2 of round 3)``."""
        of_round = "" if self.round_number is None else f" of round {self.round_number}"
        return f"during {self.name} (session {session}{of_round})"


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
    session_id: str
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Attempt:
    """One session's outcome: what the aggregator received, or why the session failed."""

    received: Any
    session_id: str | None  # None: the aggregator got no result
    seconds: float
    problem: str = ""
    failures: dict[str, fed.CallFailure] = field(default_factory=dict)  # providers' calls
    reused: bool = False  # ran in a session kept from an earlier computation


def run_secure_session(federation: fed.Federation, providers: tuple[str, ...],
                       contribution_id: str, *,
                       ready: Callable[[ActorHandle], ray.ObjectRef],
                       join: Callable[[ActorHandle, MpcSession], ray.ObjectRef],
                       receive: Callable[[ActorHandle, MpcSession], ray.ObjectRef],
                       rerun: bool = True,
                       incarnations: Mapping[str, str] | None = None,
                       step: Step = Step()) -> SecureSession:
    """Run one secure computation over ``providers``, re-run whole without any that drop out
    (unless ``rerun`` is False: then a failed session fails the computation).

    ``ready`` asks a provider whether it holds an unspent ``contribution_id`` (asked before a
    session opens, so a refusal costs nothing); ``join`` makes it take part in the session;
    ``receive`` makes the aggregator take part and return what it learns; the federation's
    dealer serves the session's Beaver triples. ``incarnations`` (provider -> boot id,
    as selected for the round; default: as answering now) tell a restarted provider, which
    has lost what it staged, from one that refuses.
    """
    settings = get_settings()
    if incarnations is None:
        incarnations = reachable(federation, providers, settings.ping_timeout_s).incarnations
    remaining, dropped, number, stale_retried = tuple(providers), {}, 0, False
    while True:
        number += 1
        during = step.during(number)
        gone, refusing = _not_ready(federation, remaining, ready, incarnations, settings)
        dropped |= {name: f"{why} {during}" for name, why in gone.items()}
        if gone and not rerun:  # all or nothing: never answered by the rest
            raise RoundFailed(contribution_id, f"{sorted(gone)} dropped out before the session",
                              dropped)
        if refusing:
            raise RoundFailed(contribution_id, f"{list(refusing)} hold no unspent contribution",
                              dropped)
        remaining = tuple(name for name in remaining if name not in gone)
        if len(remaining) < settings.min_providers:
            raise RoundFailed(contribution_id, f"{len(remaining)} provider(s) left, need "
                              f"{settings.min_providers}", dropped)
        attempt = _attempt(federation, remaining, join, receive, settings)
        if attempt.session_id is not None:
            return SecureSession(attempt.received, remaining, attempt.seconds, attempt.session_id,
                                 dropped)
        if not rerun:
            raise RoundFailed(contribution_id, f"secure session {number} failed: {attempt.problem}",
                              dropped)
        lost = _dropouts(federation, remaining, attempt.failures, incarnations, settings)
        if not lost and attempt.reused and not stale_retried:
            # A kept session can have gone stale between computations (its dealer restarted,
            # say); the same parties' values in a fresh one reveal nothing new.
            stale_retried = True
            continue
        if not lost:
            # Nobody dropped out, so a re-run would fail alike (or reveal the same values again).
            raise RoundFailed(contribution_id, f"secure session {number} failed with every "
                              f"provider present: {attempt.problem}", dropped)
        dropped |= {name: f"{why} {during}" for name, why in lost.items()}
        remaining = tuple(name for name in remaining if name not in lost)


def _not_ready(federation: fed.Federation, names: tuple[str, ...],
               ready: Callable[[ActorHandle], ray.ObjectRef], incarnations: Mapping[str, str],
               settings: Settings) -> tuple[dict[str, str], tuple[str, ...]]:
    """(providers that are gone or were restarted since selection, with why; providers that
    are the incarnation selected and still refuse: nothing to contribute, or spent)."""
    answers, gone = fed.call_each(federation, names, ready, settings.ping_timeout_s)
    refusing = tuple(name for name, ok in answers.items() if not ok)
    if refusing:
        gone |= departed(federation, incarnations, refusing, settings.ping_timeout_s)
    return gone, tuple(name for name in refusing if name not in gone)


def _attempt(federation: fed.Federation, parties: tuple[str, ...],
             join: Callable[[ActorHandle, MpcSession], ray.ObjectRef],
             receive: Callable[[ActorHandle, MpcSession], ray.ObjectRef],
             settings: Settings) -> _Attempt:
    aggregator = fed.aggregator(federation)
    try:
        opened = _open_session(aggregator, parties, settings)
    except ray.exceptions.RayError as error:
        return _Attempt(None, None, 0.0, f"{fed.AGGREGATOR} {fed.failure_of(error)}")
    session = opened.session
    started = time.perf_counter()
    helpers = {fed.AGGREGATOR: receive(aggregator, session)}
    if opened.formed:
        # The dealer serves the session for as long as rank 0 keeps it.
        fed.dealer(federation).deal.remote(session)
        wait_listening(session)  # rank 0 listens before the other parties dial in
    joins = fed.start_calls(federation, parties, lambda p: join(p, session))
    # Every party must be free again before a re-run (it would queue behind a party still in
    # this session, and the re-run's rendezvous time out), so wait for all of them. A party
    # that dies mid-rendezvous holds the others in gloo's connection retries for several
    # MPC timeouts (measured: 100 s at a 20 s timeout, five processes), hence the bound.
    bound = (len(parties) + 3) * settings.mpc_timeout_s
    received, failed = fed.collect(helpers, timeout_s=bound)
    _, failures = fed.collect(joins, timeout_s=max(bound - (time.perf_counter() - started), 0.0))
    aggregator.computation_ended.remote(session.session_id, clean=not (failed or failures))
    seconds = time.perf_counter() - started
    if fed.AGGREGATOR in received:
        return _Attempt(received[fed.AGGREGATOR], session.session_id, seconds)
    problem = "; ".join(f"{name} {failure}" for name, failure in (failed | failures).items())
    return _Attempt(None, None, seconds, problem, failures, reused=not opened.formed)


def _open_session(aggregator: ActorHandle, parties: tuple[str, ...],
                  settings: Settings) -> OpenedSession:
    """The aggregator's session over ``parties``, once no other computation holds it."""
    deadline = time.monotonic() + settings.provider_call_timeout_s
    pause = 0.01
    while True:
        try:
            return ray.get(aggregator.open_session.remote(parties),
                           timeout=settings.ping_timeout_s)
        except ray.exceptions.RayTaskError as error:
            if not isinstance(error.cause, SessionBusy) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.5)


def _dropouts(federation: fed.Federation, parties: tuple[str, ...],
              failures: Mapping[str, fed.CallFailure], incarnations: Mapping[str, str],
              settings: Settings) -> dict[str, str]:
    """Who dropped out of a failed session, with why: died, restarted, gone, or stuck (still
    in the session when every other party had given up on it)."""
    lost = {name: "stalled" if failure.kind is fed.FailureKind.TIMED_OUT else str(failure)
            for name, failure in failures.items() if failure.party_lost}
    # A restart need not fail the call in flight (the value may have left before it), so
    # the others' incarnations are checked too.
    others = tuple(name for name in parties if name not in lost)
    return lost | departed(federation, incarnations, others, settings.ping_timeout_s)


def secure_sum_over(federation: fed.Federation, providers: tuple[str, ...], contribution_id: str,
                    size: int, *, incarnations: Mapping[str, str] | None = None,
                    step: Step = Step("a secure sum"), rerun: bool = True) -> SecureSum:
    """The sum of ``contribution_id`` over ``providers``, re-run without any that drop out
    (``rerun=False``: all of them or none); the contribution is spent at every party of the
    session whose sum is returned."""
    summed = run_secure_session(
        federation, providers, contribution_id,
        ready=lambda p: p.can_contribute.remote(contribution_id),
        join=lambda p, session: p.join_secure_sum.remote(session, contribution_id),
        receive=lambda aggregator, session: aggregator.secure_sum.remote(session, size),
        incarnations=incarnations, step=step, rerun=rerun)
    _settle(federation, providers, contribution_id, summed)
    return SecureSum(summed.received, summed.parties, summed.seconds, summed.dropped)


def _settle(federation: fed.Federation, providers: tuple[str, ...], contribution_id: str,
            accepted: SecureSession) -> None:
    """Spend the contribution at the accepted session's parties; the others drop theirs."""
    _, unconfirmed = fed.call_each(
        federation, accepted.parties,
        lambda p: p.accept.remote(contribution_id, accepted.session_id),
        get_settings().ping_timeout_s)
    if unconfirmed:
        # Their values are in the sum all the same; a provider that lost its staged value
        # (restarted) or that is gone has nothing left to spend.
        log.warning("%s: accepting session %s was not confirmed by %s", contribution_id,
                    accepted.session_id, unconfirmed)
    # A provider that was only slow or stalled still holds its value; it drops it once free
    # (the call waits in its queue), whether or not it answers in time here.
    fed.call_each(federation, tuple(name for name in providers if name not in accepted.parties),
                  lambda p: p.withdraw.remote(contribution_id), get_settings().ping_timeout_s)


@task(cache_policy=NO_CACHE)
def secure_aggregate(federation: fed.Federation, contributors: tuple[str, ...],
                     contribution_id: str, size: int, round_number: int,
                     incarnations: Mapping[str, str]) -> SecureSum:
    summed = secure_sum_over(federation, contributors, contribution_id, size,
                             incarnations=incarnations,
                             step=Step("secure aggregation", round_number))
    if summed.dropped:
        get_run_logger().warning("dropped during secure aggregation: %s", summed.dropped)
    return summed
