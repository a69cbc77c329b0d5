"""A federation's training rounds in one process, in plaintext, for benchmarks and tests.

Each round does what the real round does (``flows.fl_round`` over provider actors), minus the
actors and the MPC: every provider trains from the global model with ``local.train``, the
strategy turns ``sum_i n_i * delta_i`` and ``sum_i n_i`` (what the secure sum reveals) into
the next model, and the summed holdout counts give the round's metrics. Each provider's rows
are read from its partition file and split as ``actors.provider`` splits them, so the numbers
match a real job's up to the fixed-point rounding of the secure sum.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from flai.datasets import Dataset
from flai.datasets.partition import holdout_split
from flai.learning import features, local
from flai.learning.metrics import Metrics, summarise
from flai.learning.models import ModelKind, load_vector, to_vector
from flai.learning.strategy import FedAvg


def simulate(dataset: Dataset, files: list[Path], kind: ModelKind, strategy: FedAvg, rounds: int,
             holdout_fraction: float, seed: int) -> list[Metrics]:
    """The federated metrics after each of ``rounds`` rounds.

    ``seed`` is the job's and the providers' (their holdout split). Updates are not checked
    against the providers' norm bound, which refuses an update in a real round.
    """
    shards = [holdout_split(pd.read_parquet(path), holdout_fraction, seed) for path in files]
    encoded = [(features.encode(train, dataset.schema), features.encode(holdout, dataset.schema))
               for train, holdout in shards]
    width = features.feature_count(dataset.schema)
    vector = to_vector(kind.build(width, seed))
    history = []
    for round_number in range(1, rounds + 1):
        fit, round_seed = strategy.configure_fit(round_number), seed + round_number
        total, weight = torch.zeros_like(vector), 0
        for (X, y), _ in encoded:
            model = load_vector(kind.build(width, round_seed), vector)
            local.train(model, X, y, fit, round_seed)
            total += len(y) * (to_vector(model) - vector)
            weight += len(y)
        vector = strategy.aggregate_fit(vector, total, float(weight))
        model = load_vector(kind.build(width, seed), vector)
        counts = sum(local.evaluation_counts(model, X, y) for _, (X, y) in encoded)
        history.append(summarise(counts))
        strategy.aggregate_evaluate(history[-1])
    return history
