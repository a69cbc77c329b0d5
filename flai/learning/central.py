"""The baseline a federation is judged against: the same model trained on pooled data.

Only demos and benchmarks pool data like this; it reads every provider's file directly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flai.datasets import Dataset
from flai.datasets.partition import holdout_split
from flai.learning import features, local
from flai.learning.metrics import Metrics, summarise
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig


def train_central(dataset: Dataset, files: list[Path], kind: ModelKind, fit: FitConfig,
                  rounds: int, holdout_fraction: float, seed: int) -> Metrics:
    """Train on the union of the providers' training splits for ``rounds * fit.epochs`` epochs
    (the federated budget) and evaluate on the union of their holdouts."""
    splits = [holdout_split(pd.read_parquet(path), holdout_fraction, seed) for path in files]
    train = pd.concat([split[0] for split in splits], ignore_index=True)
    holdout = pd.concat([split[1] for split in splits], ignore_index=True)
    X, y = features.encode(train, dataset.schema)
    model = kind.build(X.shape[1], seed)
    local.train(model, X, y, FitConfig(**{**fit.__dict__, "epochs": fit.epochs * rounds}), seed)
    return summarise(local.evaluation_counts(model, *features.encode(holdout, dataset.schema)))
