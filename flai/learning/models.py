"""The models providers train, by name. Binary classifiers emitting one logit."""

from __future__ import annotations

from enum import Enum

import torch
from torch import nn


class ModelKind(str, Enum):
    LOGREG = "logreg"
    MLP = "mlp"

    def build(self, features: int, seed: int) -> nn.Module:
        """A freshly initialised model; the same seed gives the same weights everywhere."""
        torch.manual_seed(seed)
        if self is ModelKind.LOGREG:
            return nn.Linear(features, 1)
        return nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                             nn.Linear(32, 1))


def to_vector(model: nn.Module) -> torch.Tensor:
    """The model's parameters as one float64 vector, the unit that MPC aggregates."""
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().to(torch.float64)


def load_vector(model: nn.Module, vector: torch.Tensor) -> nn.Module:
    torch.nn.utils.vector_to_parameters(vector.to(torch.float32), model.parameters())
    return model
