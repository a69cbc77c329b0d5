"""The lifecycle of one CrypTen session in one party's process.

A session is one rendezvous of a fixed set of parties (the aggregator is rank 0). Each
secure computation runs in a fresh session: a failed one is abandoned whole and re-run with
the parties still alive, never resumed mid-collective.

Multiplications and comparisons consume Beaver triples. ``Triples.TFP`` (CrypTen's default)
has rank 0 deal them, which lets rank 0 decode every value it helps multiply: acceptable for
a plain secure sum, which uses none. ``Triples.TTP`` adds a dealer process (rank
``len(parties)``) that computes nothing and sees nothing revealed; then rank 0 learns only
what is revealed to it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from flai.net import free_port  # noqa: F401  (re-exported for the parties)
from flai.crypten_compat import load_crypten, reset_process_groups, set_collective_timeout

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


def _enter(session: MpcSession, rank: int):
    """Point this process at the session's rendezvous; returns crypten, configured."""
    crypten = load_crypten()
    crypten.cfg.mpc.provider = session.triples.value
    set_collective_timeout(session.timeout_s)
    os.environ.update(
        RENDEZVOUS=session.rendezvous,
        WORLD_SIZE=str(len(session.parties)),
        RANK=str(rank),
        DISTRIBUTED_BACKEND="gloo",
    )
    if ipaddress.ip_address(socket.gethostbyname(session.host)).is_loopback:
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    return crypten


@contextmanager
def joined(session: MpcSession, party: str) -> Iterator[int]:
    """Join ``session`` as ``party``; yields the rank. Blocks until every party joined.

    Raises on timeout (``session.timeout_s``) if a party never arrives or dies mid-way.
    """
    rank = session.rank_of(party)
    crypten = _enter(session, rank)
    mesh = None
    try:
        crypten.init()
        from flai.mpc.communicator import use_mesh  # imports crypten

        mesh = use_mesh(rank, session)
        yield rank
    finally:
        if crypten.is_initialized():
            crypten.uninit()  # rank 0 stops a dealer here, over the mesh
        if mesh is not None:
            mesh.close()
        reset_process_groups()


def run_dealer(session: MpcSession) -> None:
    """Deal Beaver triples for a ``Triples.TTP`` session until rank 0 ends it."""
    crypten = _enter(session, len(session.parties))
    try:
        from flai.mpc.communicator import MeshDealer  # imports crypten

        MeshDealer(session)
    finally:
        if crypten.is_initialized():
            crypten.uninit()
        reset_process_groups()


def run_in_session(session: MpcSession, party: str, protocol: Callable[[int], T]) -> T:
    """Join ``session``, run ``protocol(rank)``, leave. The unit a party actor exposes."""
    with joined(session, party) as rank:
        return protocol(rank)
