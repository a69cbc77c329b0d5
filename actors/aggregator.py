"""The aggregator party: owns no data, is rank 0 of every session, learns only the results.

It keeps the federation's MPC session: one session per membership, opened here (rank 0
listens) and reused by every secure computation over the same parties while the last one
over it ended cleanly at every party. Any other outcome, or another membership, forms a
new session.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
import ray
import torch

from flai.mpc.secure_combine import CombinedVectors, CombineSpec, secure_combine
from flai.mpc.secure_sum import secure_sum
from flai.mpc.secure_utilities import UtilitySpec, secure_utilities
from flai.mpc.session import MpcSession, Triples, leave_session, run_in_session
from actors.reports import AGGREGATOR, OpenedSession, SessionBusy
from flai.net import free_port
from flai.valuation.shapley import Valuation
from flai.valuation.utility import Valued, value_round

class Aggregator:
    def __init__(self, host: str, timeout_s: float) -> None:
        torch.set_num_threads(1)
        self.host = host
        self.timeout_s = timeout_s
        self._session: MpcSession | None = None
        self._clean = False  # whether the last computation over it ended well at every party
        # Until when a computation holds the session: its orchestrator reports its end, and
        # an orchestrator that never does (it crashed) loses the session at this deadline.
        self._held_until = 0.0
        self._lease = threading.Lock()

    def ping(self) -> str:
        return AGGREGATOR

    def open_session(self, providers: tuple[str, ...],
                     triples: Triples = Triples.TTP) -> OpenedSession:
        """The session over ``providers`` for one computation, with the aggregator at rank 0:
        the open one when it has the same parties and ended its last computation cleanly,
        else a new one on a free port here (leaving the old one ends its dealer's service).

        Raises ``SessionBusy`` while another computation holds the session."""
        with self._lease:
            if time.monotonic() < self._held_until:
                raise SessionBusy("another computation holds the federation's session")
            # As long as an orchestrator waits for a computation's parties
            # (tasks.secure_aggregation), and then some.
            self._held_until = time.monotonic() + (len(providers) + 4) * self.timeout_s
            current, clean = self._session, self._clean
            self._clean = False  # unknown until the orchestrator reports on this computation
            parties = (AGGREGATOR, *providers)
            if (current is not None and clean and current.parties == parties
                    and current.triples is triples):
                return OpenedSession(current, formed=False)
            leave_session()
            self._session = MpcSession(uuid.uuid4().hex, parties, self.host,
                                       free_port(self.host), self.timeout_s, triples)
            return OpenedSession(self._session, formed=True)

    def computation_ended(self, session_id: str, clean: bool) -> None:
        """The orchestrator's word on the last computation over ``session_id``: every party
        returned (clean), or some did not (the session is formed anew next time)."""
        with self._lease:
            if self._session is not None and self._session.session_id == session_id:
                self._clean, self._held_until = clean, 0.0

    def secure_sum(self, session: MpcSession, size: int) -> torch.Tensor:
        """Take part with zeros; receive the sum of the providers' staged values."""
        zeros = torch.zeros(size, dtype=torch.float64)
        return run_in_session(session, AGGREGATOR, lambda rank: secure_sum(zeros))

    def secure_combine(self, session: MpcSession, spec: CombineSpec) -> CombinedVectors:
        """Receive a federated query's combined, disclosure-controlled partials."""
        return run_in_session(session, AGGREGATOR, lambda rank: secure_combine(spec, None))

    def secure_utilities(self, session: MpcSession, spec: UtilitySpec,
                         valuation: Valuation) -> Valued[str]:
        """Drive ``valuation`` over the providers' coalition utilities, computed on shares:
        each provider's value and every coalition's (log loss, accuracy), scalars only."""
        drive = functools.partial(value_round, valuation, list(spec.providers))
        return run_in_session(session, AGGREGATOR, lambda rank: secure_utilities(spec, None, drive))


# Two threads, so that a computation waiting for the session hears at once that it is held;
# the lease lets one computation at a time into the session.
AggregatorActor = ray.remote(num_cpus=0, max_restarts=3, max_concurrency=2)(Aggregator)
