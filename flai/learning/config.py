"""What a training job is made of, as plain values: the model kind, the local optimiser, the
round's fit configuration and the server's optimiser. Nothing here loads torch, so the CLI
builds its options from these without paying for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


class ModelKind(str, Enum):
    LOGREG = "logreg"
    MLP = "mlp"

    def build(self, features: int, seed: int) -> nn.Module:
        """A freshly initialised model; the same seed gives the same weights everywhere."""
        import torch
        from torch import nn

        torch.manual_seed(seed)
        if self is ModelKind.LOGREG:
            return nn.Linear(features, 1)
        return nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                             nn.Linear(32, 1))


class LocalOptimiser(str, Enum):
    """How a provider steps through its own rows."""

    # Plain SGD, as in FedAvg (McMahan et al., 2017) and Flower's examples. Adam scales each
    # weight's step by that weight's own gradient history, so on a shard of (almost) one
    # class rarely active features' weights are pushed towards that class as far as the rest.
    # On census over 8 providers (the 134,128-row shard holds 1 positive) one round of Adam
    # (lr 0.05) moved that shard's model by 9.9 (SGD: 3.5), and the global model predicted
    # nothing positive: AUC 0.57, log loss 1.26 after 5 rounds (bench/model_quality.py).
    SGD = "sgd"
    ADAM = "adam"


@dataclass(frozen=True)
class FitConfig:
    """What each provider is asked to do in a round."""

    epochs: int = 1
    batch_size: int = 64
    # For SGD on features scaled to [0, 1] (0.05 suits Adam). FedAvg's model moves less per
    # round than central SGD per epoch; census over 8 providers, 5 rounds, AUC gap to central
    # at 0.5 / 1.0 / 2.0: 1.8 / 1.0 / 0.5 points. Central's own last iterate is noisy at 2.0.
    learning_rate: float = 2.0
    optimiser: LocalOptimiser = LocalOptimiser.SGD
    proximal_mu: float = 0.0  # FedProx: weight of (mu/2)*||w - w_global||^2 in the local loss
    # The federation's positive rate. Given, each provider trains its logits shifted by its own
    # label prior against it (logit adjustment, Menon et al., ICLR 2021), so a label-skewed
    # shard fits the federation's model instead of its own base rate.
    # None: no shift (plain FedAvg).
    label_prior: float | None = None


class ServerOptimiser(str, Enum):
    """How the server turns the mean update into the next model."""

    FEDAVG = "fedavg"  # add it
    FEDAVGM = "fedavgm"
    FEDADAGRAD = "fedadagrad"
    FEDADAM = "fedadam"
    FEDYOGI = "fedyogi"


class JobSpecError(ValueError):
    """A task's job document is not a job this version can run."""


JOB_SPEC_FORMAT = "flai.job/1"


@dataclass(frozen=True)
class JobSpec:
    """The training job a modeler asks a DAO to approve: stored in the content store as
    canonical JSON, its CID on chain with the task. Everything a governed run does comes from
    here, so what was voted on is what runs."""

    dataset: str
    model: ModelKind = ModelKind.LOGREG
    rounds: int = 5
    providers: int | None = None  # census: Dirichlet providers; heart: its hospitals
    alpha: float = 0.5
    epochs: int = 1
    learning_rate: float = FitConfig().learning_rate
    mu: float = 0.0
    server: ServerOptimiser = ServerOptimiser.FEDAVG
    seed: int = 0
    min_stake: int = 0  # FLAI base units each selected provider must have bonded

    def to_json(self) -> bytes:
        """Canonical JSON: the same job always gives the same bytes, hence the same CID.

        >>> JobSpec.from_json(JobSpec("heart", rounds=2).to_json()) == JobSpec("heart", rounds=2)
        True
        """
        document = {"format": JOB_SPEC_FORMAT, **self.__dict__,
                    "model": self.model.value, "server": self.server.value}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> JobSpec:
        try:
            document = json.loads(data)
            if document.pop("format", None) != JOB_SPEC_FORMAT:
                raise JobSpecError(f"not a {JOB_SPEC_FORMAT} document")
            spec = cls(**{**document, "model": ModelKind(document["model"]),
                          "server": ServerOptimiser(document["server"])})
        except (ValueError, TypeError, KeyError) as error:
            raise JobSpecError(f"not a job this version can run: {error}") from None
        if spec.rounds < 1 or spec.epochs < 1 or spec.min_stake < 0:
            raise JobSpecError("rounds and epochs must be at least 1, min_stake at least 0")
        return spec
