"""A party's membership of a CrypTen session, kept open across computations.

A session is one rendezvous of a fixed set of parties (the aggregator is rank 0). Joining
costs a rendezvous, a zero-sharing seed exchange and a socket mesh; a process therefore stays
in its session after a computation, and the next computation of the same session runs at
once. A computation that fails leaves the session (its peers' collectives failed as well, and
their generators no longer agree): the orchestrator forms a new one with the parties still
there, never resuming one mid-collective. Joining a different session leaves the current one.

Multiplications and comparisons consume Beaver triples. ``Triples.TFP`` (CrypTen's default)
has rank 0 deal them, which lets rank 0 decode every value it helps multiply: acceptable for
a plain secure sum, which uses none. ``Triples.TTP`` adds a dealer process (rank
``len(parties)``) that computes nothing and sees nothing revealed; then rank 0 learns only
what is revealed to it. The dealer serves its session until rank 0 leaves it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from flai.settings import environment

T = TypeVar("T")


class Triples(str, Enum):
    """Who deals multiplication triples: rank 0 (trusted first party) or a separate dealer."""

    TFP = "TFP"
    TTP = "TTP"


@dataclass(frozen=True)
class MpcSession:
    """Who takes part (party names, rank = position) and where they meet."""

    session_id: str
    parties: tuple[str, ...]
    host: str
    port: int
    timeout_s: float
    triples: Triples = Triples.TFP

    @property
    def processes(self) -> int:
        """Every process of the session: the parties, and the dealer under ``Triples.TTP``."""
        return len(self.parties) + (self.triples is Triples.TTP)

    @property
    def rendezvous(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def rank_of(self, party: str) -> int:
        return self.parties.index(party)


@dataclass(frozen=True)
class _Membership:
    session: MpcSession
    rank: int
    mesh: object  # flai.mpc.mesh.Mesh; typed loosely so importing this module loads no crypten


_membership: _Membership | None = None  # this process's open session


def _rendezvous_environment(session: MpcSession, rank: int) -> dict[str, str]:
    """What CrypTen reads from the environment to join; set for the join only."""
    values = {"RENDEZVOUS": session.rendezvous, "WORLD_SIZE": str(len(session.parties)),
              "RANK": str(rank), "DISTRIBUTED_BACKEND": "gloo"}
    if ipaddress.ip_address(socket.gethostbyname(session.host)).is_loopback:
        values["GLOO_SOCKET_IFNAME"] = "lo"
    return values


def _init(session: MpcSession, rank: int) -> None:
    """Rendezvous as ``rank`` and initialise CrypTen for the session."""
    from flai.mpc.crypten_adapter import crypten, set_collective_timeout

    crypten.cfg.mpc.provider = session.triples.value
    set_collective_timeout(session.timeout_s)
    with environment(_rendezvous_environment(session, rank)):
        crypten.init()


def _join(session: MpcSession, party: str) -> _Membership:
    """Join ``session`` as ``party``. Blocks until every party joined; raises on timeout
    (``session.timeout_s``) if a party never arrives or dies mid-way."""
    rank = session.rank_of(party)
    try:
        _init(session, rank)
        from flai.mpc.crypten_adapter import use_mesh

        return _Membership(session, rank, use_mesh(rank, session))
    except BaseException:
        _uninit()
        raise


def _uninit() -> None:
    from flai.mpc.crypten_adapter import crypten, reset_process_groups

    try:
        if crypten.is_initialized():
            crypten.uninit()  # rank 0 stops a dealer here, over the mesh
    except Exception:  # noqa: BLE001 - a peer already gone: there is nobody left to tell
        pass
    finally:
        reset_process_groups()


def leave_session() -> None:
    """Leave this process's session, if it is in one (a no-op otherwise)."""
    global _membership
    membership, _membership = _membership, None
    if membership is None:
        return
    try:
        _uninit()
    finally:
        membership.mesh.close()


def current_session() -> str | None:
    """The id of the session this process is in, if any."""
    return None if _membership is None else _membership.session.session_id


def run_in_session(session: MpcSession, party: str, protocol: Callable[[int], T]) -> T:
    """Run ``protocol(rank)`` as ``party`` of ``session``, joining it first unless this process
    already is in it; the session stays open afterwards unless the protocol fails."""
    global _membership
    if current_session() != session.session_id:
        leave_session()
        _membership = _join(session, party)
    try:
        return protocol(_membership.rank)
    except BaseException:
        leave_session()
        raise


@contextmanager
def joined(session: MpcSession, party: str) -> Iterator[int]:
    """Join ``session`` as ``party`` for the ``with`` block only; yields the rank."""
    run_in_session(session, party, lambda rank: None)
    try:
        yield _membership.rank
    finally:
        leave_session()


def run_dealer(session: MpcSession) -> None:
    """Deal Beaver triples for a ``Triples.TTP`` session until rank 0 ends it."""
    try:
        _init(session, len(session.parties))  # a failed rendezvous is cleaned up too
        from flai.mpc.crypten_adapter import MeshDealer

        MeshDealer(session)
    finally:
        _uninit()


def wait_listening(session: MpcSession) -> None:
    """Return once rank 0's rendezvous accepts connections (``session.timeout_s`` at most).

    Parties that dial before rank 0 listens back off and retry; measured, that race cost a
    session 0.63 s against 0.014 s when rank 0 listened first.
    """
    deadline = time.monotonic() + session.timeout_s
    while True:
        try:
            socket.create_connection((session.host, session.port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"rank 0 of session {session.session_id} is not listening "
                                   f"at {session.rendezvous}") from None
            time.sleep(0.002)
