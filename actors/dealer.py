"""The dealer party: supplies Beaver triples to sessions that multiply or compare.

It holds no data, receives no result and sees nothing revealed; with it, the aggregator
(rank 0) no longer deals triples it could use to decode the values it helps compare. It
serves one session at a time, for as long as rank 0 keeps that session open.
"""

from __future__ import annotations

import threading

import ray
import torch

from actors.reports import DEALER
from flai.mpc.session import MpcSession, run_dealer

class Dealer:
    def __init__(self) -> None:
        torch.set_num_threads(1)
        # A new session's service waits for the previous one to end (its rank 0 left it):
        # CrypTen's state is the process's.
        self._serving = threading.Lock()

    def ping(self) -> str:
        return DEALER

    def deal(self, session: MpcSession) -> None:
        """Serve ``session`` until its rank 0 leaves it."""
        with self._serving:
            run_dealer(session)


# Two threads: one serves a session for its whole life, the other answers pings meanwhile.
DealerActor = ray.remote(num_cpus=0, max_restarts=3, max_concurrency=2)(Dealer)
