"""The consumer party: holds its input rows, alone learns the predictions.

Its rows come from a CSV file of encoded feature rows (``flai.learning.features.encode``'s
columns, one row per line, no header; ``#`` starts a comment) and never leave the actor
except as MPC shares or CKKS ciphertexts. The predictions stay here too: the consumer's own
side reads them with ``predictions``; what it returns to a coordinator is a row count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ray
import torch

from flai.inference.he import HeAnswer, HeConsumer, HeQuery
from flai.inference.mpc import MpcPlan, predict_as_consumer
from flai.mpc.session import MpcSession, run_in_session


class ConsumerNoPredictions(RuntimeError):
    """No request of this consumer has been answered yet."""


class Consumer:
    def __init__(self, name: str, rows_csv: Path) -> None:
        torch.set_num_threads(1)
        self.name = name
        self._he: HeConsumer | None = None  # its key pair, made on the first HE request
        self.load_rows(rows_csv)

    def ping(self) -> str:
        return self.name

    def load_rows(self, rows_csv: Path) -> int:
        """The next request's rows, read here from the consumer's own file; returns how many.
        A consumer's actor is kept across requests, so the holder's session with it is too."""
        self._rows = np.loadtxt(rows_csv, delimiter=",", ndmin=2, dtype=np.float64)
        self._predictions: np.ndarray | None = None
        return len(self._rows)

    def batch_size(self) -> int:
        return len(self._rows)

    def predict_mpc(self, session: MpcSession, plan: MpcPlan) -> int:
        """Take part in one MPC request as rank 1; keeps the predictions, returns the rows."""
        self._predictions = run_in_session(session, self.name,
                                           lambda rank: predict_as_consumer(self._rows, plan))
        return len(self._predictions)

    def he_query(self) -> HeQuery:
        """The rows, encrypted under this consumer's key, with the public context."""
        if self._he is None:
            self._he = HeConsumer()
        return self._he.query(self._rows)

    def he_answered(self, answer: HeAnswer) -> int:
        """Decrypt the holder's answer to ``he_query``; keeps the predictions, returns the rows."""
        if self._he is None:
            raise ConsumerNoPredictions(f"{self.name}: an answer to a query it never made")
        self._predictions = self._he.decrypt(answer, len(self._rows))
        return len(self._predictions)

    def predictions(self) -> np.ndarray:
        """The last request's probabilities of class 1, one per row: for the consumer only."""
        if self._predictions is None:
            raise ConsumerNoPredictions(f"{self.name}: no request answered yet")
        return self._predictions


# num_cpus=0: both MPC parties must be schedulable at once (shared/STACK.md).
ConsumerActor = ray.remote(num_cpus=0, max_restarts=0)(Consumer)
