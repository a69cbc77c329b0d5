"""A data provider: its partition, its local training and its MPC party, in one actor.

The partition is read from the provider's own Parquet file and never leaves the actor. Model
updates and evaluation counts are staged here under a contribution id and leave only as a
masked share inside a secure-sum session (``flai.mpc.secure_sum``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import ray
import torch

from actors.query_party import QueryParty
from actors.reports import EvalReport, FitReport, ProviderInfo
from flai.datasets import Dataset
from flai.datasets.partition import holdout_split
from flai.learning import features, local
from flai.learning.models import ModelKind, load_vector, to_vector
from flai.learning.strategy import FitConfig
from flai.mpc.secure_sum import secure_sum
from flai.mpc.session import MpcSession, run_in_session
from flai.quality import QualityReport, validate


HOLDOUT_FRACTION = 0.2


class ContributionRefused(RuntimeError):
    """A provider will not share a staged value: unknown, or already revealed once."""


class Provider(QueryParty):
    """The provider's logic; ``ProviderActor`` is this class as a Ray actor."""

    def __init__(self, name: str, dataset: Dataset, data_file: Path, max_update_norm: float,
                 holdout_fraction: float = HOLDOUT_FRACTION, seed: int = 0) -> None:
        super().__init__()
        torch.set_num_threads(1)
        self.name = name
        self.dataset = dataset
        self.data_file = Path(data_file)
        self.max_update_norm = max_update_norm
        self._train, self._holdout = holdout_split(pd.read_parquet(self.data_file),
                                                   holdout_fraction, seed)
        self._staged: dict[str, torch.Tensor] = {}
        self._revealed: set[str] = set()

    def ping(self) -> str:
        return self.name

    def describe(self) -> ProviderInfo:
        return ProviderInfo(self.name, self.dataset.value, len(self._train), len(self._holdout))

    def check_quality(self) -> QualityReport:
        """The data-quality gate on the whole partition (train and holdout): a verdict only."""
        return validate(pd.concat([self._train, self._holdout], ignore_index=True),
                        self.dataset.schema)

    def fit(self, contribution_id: str, global_vector: torch.Tensor, kind: ModelKind,
            config: FitConfig, seed: int) -> FitReport:
        """Train from the global model; stage ``[n * delta, n]`` for secure aggregation.

        The update is refused here, before any sharing, when it is NaN/inf or its L2 norm
        exceeds the bound: a provider never puts a value into MPC that could wreck the sum.
        """
        delta, loss, samples = self._local_update(global_vector, kind, config, seed)
        if not (torch.isfinite(delta).all() and math.isfinite(loss)):
            return FitReport(self.name, samples, loss, False, "non-finite update (NaN or inf)")
        norm = torch.linalg.vector_norm(delta).item()
        if norm > self.max_update_norm:
            return FitReport(self.name, samples, loss, False,
                             f"update norm {norm:.3g} exceeds bound {self.max_update_norm:.3g}")
        weight = torch.tensor([float(samples)], dtype=torch.float64)
        self._staged[contribution_id] = torch.cat([samples * delta, weight])
        return FitReport(self.name, samples, loss, True)

    def _local_update(self, global_vector: torch.Tensor, kind: ModelKind, config: FitConfig,
                      seed: int) -> tuple[torch.Tensor, float, int]:
        """One round of local training: (update, mean loss, sample count)."""
        X, y = features.encode(self._train, self.dataset.schema)
        model = load_vector(kind.build(X.shape[1], seed), global_vector)
        loss = local.train(model, X, y, config, seed)
        return to_vector(model) - global_vector.to(torch.float64), loss, len(y)

    def evaluate(self, contribution_id: str, global_vector: torch.Tensor, kind: ModelKind,
                 seed: int) -> EvalReport:
        """Stage the additive evaluation counts of the global model on the local holdout."""
        X, y = features.encode(self._holdout, self.dataset.schema)
        model = load_vector(kind.build(X.shape[1], seed), global_vector)
        self._staged[contribution_id] = local.evaluation_counts(model, X, y)
        return EvalReport(self.name, len(y))

    def can_contribute(self, contribution_id: str) -> bool:
        """Whether a session for ``contribution_id`` would be joined, asked before opening one."""
        return contribution_id in self._staged and contribution_id not in self._revealed

    def join_secure_sum(self, session: MpcSession, contribution_id: str) -> None:
        """Contribute a staged value to ``session``'s secure sum. Returns nothing, by design.

        A contribution is revealed (as part of a sum) at most once: after a completed session
        it is spent, so a retried or replayed session cannot difference two sums over
        different party sets. A session that failed leaves it staged for the re-run.
        """
        if contribution_id in self._revealed:
            raise ContributionRefused(f"{self.name}: {contribution_id} was already aggregated")
        if contribution_id not in self._staged:
            raise ContributionRefused(f"{self.name}: nothing staged under {contribution_id}")
        value = self._staged[contribution_id]
        run_in_session(session, self.name, lambda rank: secure_sum(value))
        self._revealed.add(contribution_id)
        del self._staged[contribution_id]

    def withdraw(self, contribution_id: str) -> None:
        """Drop a staged value that will not be aggregated (its round went on without it)."""
        self._staged.pop(contribution_id, None)


# num_cpus=0: every MPC party must be schedulable at once or the rendezvous deadlocks
# (shared/STACK.md). A crashed provider is restarted from its file and rejoins later rounds.
ProviderActor = ray.remote(num_cpus=0, max_restarts=3)(Provider)
