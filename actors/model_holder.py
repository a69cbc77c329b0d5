"""The model holder party: opens a round's sealed model and serves private inference on it.

It holds the weights and nothing of a consumer's: under MPC it is rank 0 of a two-party
session with the consumer (and a dealer) and sends its share of the output to the consumer;
under HE it computes on the consumer's ciphertexts with the consumer's public context. It
never sees a row or a prediction.

It keeps one MPC session open, with the last consumer it served, and reuses it while the
last request over it ended cleanly at both parties; another consumer, or a failed request,
forms a new one (leaving the old one ends its dealer's service).
"""

from __future__ import annotations

import threading
import time
import uuid

import ray
import torch

from actors.reports import OpenedSession, SessionBusy
from flai.crypto import KeyStore, fetch_model
from flai.inference.he import HeAnswer, HeHolder, HeQuery
from flai.inference.model import Architecture, ModelRef, ModelWeights
from flai.inference.mpc import MpcPlan, serve_as_holder
from flai.lineage import model_context
from flai.mpc.session import MpcSession, Triples, run_in_session
from flai.net import free_port
from flai.settings import get_settings
from flai.storage import open_store

MODEL_HOLDER = "model-holder"


class ModelHolder:
    def __init__(self, name: str = MODEL_HOLDER) -> None:
        torch.set_num_threads(1)
        settings = get_settings()
        self.name, self.host, self.timeout_s = name, settings.mpc_host, settings.mpc_timeout_s
        self._models: dict[str, ModelWeights] = {}
        self._he = HeHolder()
        self._session: MpcSession | None = None
        self._clean = False  # whether the last request over it ended well at both parties
        # Until when a request holds the session; a coordinator that never reports its end
        # (it crashed) loses the session at this deadline.
        self._held_until = 0.0
        self._lease = threading.Lock()
        # A request's service waits for the previous one to end (a consumer that stalled holds
        # it until the MPC timeout): CrypTen's state is the process's.
        self._serving = threading.Lock()

    def ping(self) -> str:
        return self.name

    def architecture(self, model: ModelRef) -> Architecture:
        """The model's public shape (kind and layer widths), all a consumer needs to ask."""
        return self._weights(model).architecture

    def open_session(self, consumer: str) -> OpenedSession:
        """The session with ``consumer`` for one request: the kept one when it is with the
        same consumer and its last request ended cleanly, else a new one listening here.

        Raises ``SessionBusy`` while another request holds the session."""
        with self._lease:
            if time.monotonic() < self._held_until:
                raise SessionBusy(f"{self.name}: another request holds the session")
            self._held_until = time.monotonic() + 4 * self.timeout_s
            current, clean, self._clean = self._session, self._clean, False
            parties = (self.name, consumer)
            if current is not None and clean and current.parties == parties:
                return OpenedSession(current, formed=False)
            # serve_mpc leaves the old session, once the request over it has ended
            self._session = MpcSession(uuid.uuid4().hex, parties, self.host,
                                       free_port(self.host), self.timeout_s, Triples.TTP)
            return OpenedSession(self._session, formed=True)

    def request_ended(self, session_id: str, clean: bool) -> None:
        """The coordinator's word on the last request over ``session_id``."""
        with self._lease:
            if self._session is not None and self._session.session_id == session_id:
                self._clean, self._held_until = clean, 0.0

    def serve_mpc(self, session: MpcSession, model: ModelRef, plan: MpcPlan) -> None:
        """Take part in one MPC request as rank 0; returns nothing, learns no output."""
        weights = self._weights(model)
        with self._serving:
            run_in_session(session, self.name, lambda rank: serve_as_holder(weights, plan))

    def evaluate_he(self, model: ModelRef, query: HeQuery) -> HeAnswer:
        """The encrypted logits of the query's rows, computed without any secret key."""
        return self._he.evaluate(self._weights(model), query)

    def _weights(self, model: ModelRef) -> ModelWeights:
        """The model, fetched, opened with the task's key and checked once per holder."""
        if model.model_id not in self._models:
            settings = get_settings()
            key = KeyStore.for_data_dir(settings.data_dir).load(model.task_id)
            data = fetch_model(open_store(settings), model.cid, key,
                               model_context(model.task_id, model.round_number), model.sha256)
            self._models[model.model_id] = ModelWeights.from_model_bytes(data)
        return self._models[model.model_id]


# num_cpus=0: both MPC parties must be schedulable at once (shared/STACK.md). Two threads,
# so that a request finding the session held is told so at once; the lease admits one.
ModelHolderActor = ray.remote(num_cpus=0, max_restarts=3, max_concurrency=2)(ModelHolder)
