"""One real FedAvg round on Census partitions, in the clear: the inputs of a valuation.

Each provider trains from the same global model with ``flai.learning.local.train`` (the code
a provider actor runs) and stages ``[n * delta, n]`` exactly as ``Provider.fit`` does; its
validation rows are ``validation_sample`` of its holdout.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from flai.datasets import Dataset
from flai.datasets.partition import dirichlet_split, holdout_split
from flai.learning import features, local
from flai.learning.models import ModelKind, load_vector, to_vector
from flai.learning.strategy import FitConfig
from flai.valuation.utility import Holdout, validation_sample


@dataclass(frozen=True)
class Round:
    global_vector: torch.Tensor
    staged: dict[str, torch.Tensor]
    holdouts: dict[str, Holdout]
    train_seconds: tuple[float, ...] = ()  # each provider's local training


def census_round(providers: int, rows: int, rows_per_provider: int = 1500, seed: int = 0,
                 shuffled: tuple[int, ...] = (), twins: dict[int, int] | None = None,
                 warmup_rows: int = 2000, alpha: float = 1.0) -> Round:
    """A round over ``providers`` label-skewed Census partitions.

    ``alpha``: the Dirichlet label skew (large: nearly IID). ``shuffled``: providers whose labels are permuted (free riders without signal).
    ``twins``: ``{copy: original}``, providers holding an exact copy of another's data. The
    global model is first trained on ``warmup_rows`` other rows, so the round starts from a
    model that is already reasonable, as a later round would.
    """
    schema = Dataset.CENSUS.schema
    frame = _census().sample(n=providers * rows_per_provider + warmup_rows,
                                         random_state=seed).reset_index(drop=True)
    warmup, pooled = frame.iloc[:warmup_rows], frame.iloc[warmup_rows:].reset_index(drop=True)
    parts = list(dirichlet_split(pooled, schema.label, providers, alpha=alpha, seed=seed).values())
    for copy, original in (twins or {}).items():
        parts[copy] = parts[original]
    X0, y0 = features.encode(warmup, schema)
    model = ModelKind.LOGREG.build(X0.shape[1], seed)
    local.train(model, X0, y0, FitConfig(epochs=1), seed)
    global_vector = to_vector(model)
    staged, holdouts, seconds = {}, {}, []
    for i, part in enumerate(parts):
        train, holdout = holdout_split(part, 0.2, seed)
        X, y = features.encode(train, schema)
        if i in shuffled:
            y = y[torch.from_numpy(np.random.default_rng(seed + i).permutation(len(y)))]
        started = time.perf_counter()
        trained = load_vector(ModelKind.LOGREG.build(X.shape[1], seed), global_vector)
        local.train(trained, X, y, FitConfig(epochs=1), seed)
        seconds.append(time.perf_counter() - started)
        delta = to_vector(trained) - global_vector
        name = f"provider-{i}"
        staged[name] = torch.cat([len(y) * delta, torch.tensor([float(len(y))], dtype=torch.float64)])
        holdouts[name] = validation_sample(*features.encode(holdout, schema), rows=rows, seed=seed + i)
    return Round(global_vector, staged, holdouts, tuple(seconds))


@functools.cache
def _census() -> pd.DataFrame:
    return Dataset.CENSUS.load()  # 300k rows, read once per process
