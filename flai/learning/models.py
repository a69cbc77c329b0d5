"""The models providers train, by name. Binary classifiers emitting one logit."""

from __future__ import annotations

import torch
from torch import nn

from flai.learning.config import ModelKind

__all__ = ["ModelKind", "load_vector", "to_vector"]


def to_vector(model: nn.Module) -> torch.Tensor:
    """The model's parameters as one float64 vector, the unit that MPC aggregates."""
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().to(torch.float64)


def load_vector(model: nn.Module, vector: torch.Tensor) -> nn.Module:
    torch.nn.utils.vector_to_parameters(vector.to(torch.float32), model.parameters())
    return model
