"""A data provider: its partition, its local training and its MPC party, in one actor.

The partition is read from the provider's own Parquet file and never leaves the actor. Model
updates and evaluation counts (overall, and per group of the sensitive attribute) are staged
here under a contribution id and leave only as a masked share inside a secure-sum session
(``flai.mpc.secure_sum``).

The file's bytes are hashed once at load: that digest is the data version. Work that depends
only on the data is done once per version: the quality verdict (kept on disk next to the
partition, so a restarted provider does not even import Great Expectations) and the encoded
features (kept for the incarnation, shared by every round's training and evaluation).
"""

from __future__ import annotations

import hashlib
import io
import math
import uuid
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow
import ray
import torch

from actors.query_party import QueryParty
from actors.reports import EvalReport, FitReport, Incarnation, ProviderInfo
from flai.datasets import Dataset
from flai.datasets.partition import holdout_split
from flai.learning import fairness, features, local
from flai.learning.models import ModelKind, load_vector, to_vector
from flai.learning.strategy import FitConfig
from flai.mpc.secure_sum import secure_sum
from flai.mpc.secure_utilities import UtilityInput, UtilitySpec, secure_utilities
from flai.mpc.session import MpcSession, run_in_session
from flai.quality import QualityReport, validate_partition
from flai.valuation.utility import validation_sample


HOLDOUT_FRACTION = 0.2
# Accepted contributions kept for their one valuation, newest last. A round accepts two (its
# update and its evaluation counts) and is valued right after its aggregate is accepted;
# the bound keeps a federation that serves unvalued jobs for months from holding every
# update it ever aggregated.
VALUATION_WINDOW = 8


class ContributionRefused(RuntimeError):
    """A provider will not share a staged value: unknown, or already revealed once."""


class Provider(QueryParty):
    """The provider's logic; ``ProviderActor`` is this class as a Ray actor."""

    def __init__(self, name: str, dataset: Dataset, data_file: Path, max_update_norm: float,
                 holdout_fraction: float = HOLDOUT_FRACTION, seed: int = 0) -> None:
        super().__init__()
        torch.set_num_threads(1)
        # Arrow's default pool (mimalloc) keeps what a read allocated: 20-50 MB of every
        # provider process for good, measured. The file is read once; malloc costs nothing.
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
        self.name = name
        self.dataset = dataset
        self.data_file = Path(data_file)
        self.max_update_norm = max_update_norm
        self.unavailable = None  # why the partition cannot be used, if it cannot
        self.data_digest = None  # SHA-256 of the partition file's bytes: the data version
        try:
            # Hashed and parsed from one read, so the digest is that of the rows held here.
            raw = self.data_file.read_bytes()
            self.data_digest = hashlib.sha256(raw).hexdigest()
            frame = pd.read_parquet(io.BytesIO(raw))
        except FileNotFoundError:
            frame, self.unavailable = pd.DataFrame(), "partition file missing"
        except Exception:  # noqa: BLE001 - pyarrow's many errors: a corrupt file, say it is one
            frame, self.unavailable = pd.DataFrame(), "partition file unreadable"
        self._train, self._holdout = holdout_split(frame, holdout_fraction, seed)
        self._verdict: QualityReport | None = None
        self._staged: dict[str, torch.Tensor] = {}
        self._revealed: set[str] = set()
        # Accepted contributions not valued yet: each can enter one valuation session, never
        # another secure sum.
        self._to_value: OrderedDict[str, torch.Tensor] = OrderedDict()
        # Drawn once per incarnation: Ray restarts a crashed actor as a new instance, which
        # has lost what this one staged.
        self._boot_id = uuid.uuid4().hex
        # (contribution id, session id) of every session a staged value was put into.
        self._sessions_joined: set[tuple[str, str]] = set()

    def ping(self) -> Incarnation:
        """Who answers, and which incarnation of it: Ray restarts a crashed actor from scratch,
        without what it had staged, under the same name."""
        return Incarnation(self.name, self._boot_id)

    def describe(self) -> ProviderInfo:
        return ProviderInfo(self.name, self.dataset.value, len(self._train), len(self._holdout))

    def check_quality(self) -> QualityReport:
        """The data-quality gate on the whole partition (train and holdout): a verdict only,
        reached once per data version (``flai.quality.validate_partition``)."""
        if self.unavailable is not None:
            return QualityReport(self.dataset.schema.name, passed=False, rows=0, evaluated=0,
                                 failed=(self.unavailable,))
        if self._verdict is None:
            self._verdict = validate_partition(
                self.data_file, self.data_digest, self.dataset.schema,
                lambda: pd.concat([self._train, self._holdout], ignore_index=True))
        return self._verdict

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
        X, y = self._train_features
        model = load_vector(kind.build(X.shape[1], seed), global_vector)
        loss = local.train(model, X, y, config, seed)
        return to_vector(model) - global_vector.to(torch.float64), loss, len(y)

    def evaluate(self, contribution_id: str, global_vector: torch.Tensor, kind: ModelKind,
                 seed: int) -> EvalReport:
        """Stage the additive evaluation counts of the global model on the local holdout."""
        X, y = self._holdout_features
        model = load_vector(kind.build(X.shape[1], seed), global_vector)
        self._staged[contribution_id] = local.evaluation_counts(model, X, y)
        return EvalReport(self.name, len(y))

    def evaluate_by_group(self, contribution_id: str, global_vector: torch.Tensor,
                          kind: ModelKind, seed: int) -> EvalReport:
        """Stage the global model's confusion counts per group of the data set's sensitive
        attribute on the local holdout (``flai.learning.fairness``). Like ``evaluate``'s, the
        counts leave only as a masked share of a secure sum (``join_secure_sum``)."""
        X, y = self._holdout_features
        model = load_vector(kind.build(X.shape[1], seed), global_vector)
        schema = self.dataset.schema
        self._staged[contribution_id] = fairness.group_counts(
            model, X, y, fairness.group_of_rows(self._holdout, schema),
            len(fairness.sensitive_attribute(schema).domain))
        return EvalReport(self.name, len(y))

    # Encoded on first use and kept: the rows never change within an incarnation. Training
    # and evaluation only read them (``local.train`` indexes batches, which copies).
    @cached_property
    def _train_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        return features.encode(self._train, self.dataset.schema)

    @cached_property
    def _holdout_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        return features.encode(self._holdout, self.dataset.schema)

    def can_contribute(self, contribution_id: str) -> bool:
        """Whether a session for ``contribution_id`` would be joined, asked before opening one."""
        return contribution_id in self._staged and contribution_id not in self._revealed

    def join_secure_sum(self, session: MpcSession, contribution_id: str) -> None:
        """Contribute a staged value to ``session``'s secure sum. Returns nothing, by design.

        The value stays staged after the session: only the orchestrator knows whether the
        aggregator got the sum, and if a party died first, the session is re-run without it
        over the same staged values. ``accept`` spends it.
        """
        if contribution_id in self._revealed:
            raise ContributionRefused(f"{self.name}: {contribution_id} was already aggregated")
        if contribution_id not in self._staged:
            raise ContributionRefused(f"{self.name}: nothing staged under {contribution_id}")
        value = self._staged[contribution_id]
        # Recorded before the protocol runs: the masked value may reach the aggregator even
        # if this call fails afterwards, and then that session's result may be accepted.
        self._sessions_joined.add((contribution_id, session.session_id))
        run_in_session(session, self.name, lambda rank: secure_sum(value))

    def accept(self, contribution_id: str, session_id: str) -> None:
        """The aggregator's sum from ``session_id`` was accepted: ``contribution_id`` is spent.

        Only a session this provider put the value into can spend it. From then on every
        session for it is refused, so a retried or replayed session cannot difference two
        sums over different party sets. Accepting again is a no-op.
        """
        if (contribution_id, session_id) not in self._sessions_joined:
            raise ContributionRefused(
                f"{self.name}: {contribution_id} was never put into session {session_id}")
        self._revealed.add(contribution_id)
        if contribution_id in self._staged:
            # The value the accepted sum holds: the one a valuation of the round must use.
            self._to_value[contribution_id] = self._staged.pop(contribution_id)
            while len(self._to_value) > VALUATION_WINDOW:
                self._to_value.popitem(last=False)

    def can_value(self, contribution_id: str) -> bool:
        """Whether an accepted contribution still awaits its one valuation."""
        return contribution_id in self._to_value

    def join_secure_utilities(self, session: MpcSession, contribution_id: str,
                              spec: UtilitySpec, seed: int) -> None:
        """Put an accepted contribution and a sample of at most ``spec.rows`` holdout rows
        (drawn with ``seed``) into ``session``'s coalition utilities. Returns nothing, by design.

        Once only: the value is taken before the protocol runs, so a failed or replayed
        valuation can never reveal a second set of utilities over the same update. A sample
        smaller than the data owners' ``min_group_size`` is refused: a utility over a few rows
        would be a statement about those patients.
        """
        floor = self.dataset.policy.min_group_size
        if spec.rows < floor:
            raise ContributionRefused(f"{self.name}: a validation sample of {spec.rows} row(s) "
                                      f"is below the data's policy minimum of {floor}")
        if contribution_id not in self._to_value:
            raise ContributionRefused(
                f"{self.name}: {contribution_id} is not an accepted contribution awaiting "
                "valuation (never accepted, or valued already)")
        staged = self._to_value.pop(contribution_id)
        sample = validation_sample(*self._holdout_features, rows=spec.rows, seed=seed)
        local = UtilityInput(staged, sample.features, sample.labels)
        run_in_session(session, self.name, lambda rank: secure_utilities(spec, local))

    def withdraw(self, contribution_id: str) -> None:
        """Drop a staged value that will not be aggregated (its round went on without it)."""
        self._staged.pop(contribution_id, None)


# num_cpus=0: every MPC party must be schedulable at once or the rendezvous deadlocks
# (shared/STACK.md). A crashed provider is restarted from its file and rejoins later rounds.
ProviderActor = ray.remote(num_cpus=0, max_restarts=3)(Provider)
