"""The aggregator party: owns no data, is rank 0 of every session, learns only the results."""

from __future__ import annotations

import uuid

import ray
import torch

from flai.mpc.secure_sum import secure_sum
from flai.mpc.secure_combine import CombinedVectors, CombineSpec, secure_combine
from flai.mpc.session import MpcSession, Triples, run_in_session
from flai.net import free_port

AGGREGATOR = "aggregator"


class Aggregator:
    def __init__(self, host: str, timeout_s: float) -> None:
        torch.set_num_threads(1)
        self.host = host
        self.timeout_s = timeout_s

    def ping(self) -> str:
        return AGGREGATOR

    def open_session(self, providers: tuple[str, ...], triples: Triples = Triples.TFP) -> MpcSession:
        """A fresh session with the aggregator at rank 0, listening on a free port here."""
        return MpcSession(uuid.uuid4().hex, (AGGREGATOR, *providers), self.host,
                          free_port(self.host), self.timeout_s, triples)

    def secure_sum(self, session: MpcSession, size: int) -> torch.Tensor:
        """Take part with zeros; receive the sum of the providers' staged values."""
        zeros = torch.zeros(size, dtype=torch.float64)
        return run_in_session(session, AGGREGATOR, lambda rank: secure_sum(zeros))

    def secure_combine(self, session: MpcSession, spec: CombineSpec) -> CombinedVectors:
        """Receive a federated query's combined, disclosure-controlled partials."""
        return run_in_session(session, AGGREGATOR, lambda rank: secure_combine(spec, None))


AggregatorActor = ray.remote(num_cpus=0, max_restarts=3)(Aggregator)
