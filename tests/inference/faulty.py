"""Consumers that fail inside a request, as a real consumer's process may."""

from __future__ import annotations

import os
import time

from actors.consumer import Consumer
from flai.mpc.session import run_in_session


class DyingConsumer(Consumer):
    """Joins the holder's MPC session, then its process dies."""

    def predict_mpc(self, session, plan) -> int:
        run_in_session(session, self.name, lambda rank: os._exit(1))
        return 0


class StalledConsumer(Consumer):
    """Never answers a request."""

    def predict_mpc(self, session, plan) -> int:
        time.sleep(3600)
        return 0
