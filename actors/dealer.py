"""The dealer party: supplies Beaver triples to sessions that multiply or compare.

It holds no data, receives no result and sees nothing revealed; with it, the aggregator
(rank 0) no longer deals triples it could use to decode the values it helps compare.
"""

from __future__ import annotations

import ray
import torch

from flai.mpc.session import MpcSession, run_dealer

DEALER = "dealer"


class Dealer:
    def __init__(self) -> None:
        torch.set_num_threads(1)

    def ping(self) -> str:
        return DEALER

    def deal(self, session: MpcSession) -> None:
        run_dealer(session)


DealerActor = ray.remote(num_cpus=0, max_restarts=3)(Dealer)
