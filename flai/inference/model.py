"""A published model as the private back-ends use it: per-layer float64 weights, and the
plaintext forward pass every private result is checked against.

The weights come from the ``model_bytes`` document of ``tasks.publish`` (a ``torch.save`` of
the model kind, the feature count and the float64 ``state_dict``); the layer structure is the
model kind's own module (``ModelKind.build``), so the two can never disagree.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from flai.learning.config import ModelKind

# |private - plaintext| allowed on a predicted probability. Measured worst case on heart
# (bench/private_inference.py): MPC fixed point (2**-16, one truncation per layer) 3e-5 for
# the MLP at batch 100; CKKS at scale 2**40 5e-7. The bound leaves room for wider models.
TOLERANCE = 1e-3


@dataclass(frozen=True)
class ModelRef:
    """Where a round's sealed model is and what its plaintext hashes to (as the chain records)."""

    task_id: str
    round_number: int
    cid: str
    sha256: str

    @property
    def model_id(self) -> str:
        """E.g. ``heart-4-logreg-s0/round-3``."""
        return f"{self.task_id}/round-{self.round_number}"


@dataclass(frozen=True)
class Architecture:
    """The public shape of a model: its kind and the width of every layer's input and output."""

    kind: ModelKind
    widths: tuple[int, ...]  # features, hidden widths..., 1

    @property
    def features(self) -> int:
        return self.widths[0]

    @property
    def layers(self) -> tuple[tuple[int, int], ...]:
        """(inputs, outputs) of each linear layer, in order."""
        return tuple(zip(self.widths[:-1], self.widths[1:]))


@dataclass(frozen=True)
class Dense:
    weight: np.ndarray  # [outputs, inputs], float64
    bias: np.ndarray  # [outputs], float64


@dataclass(frozen=True)
class ModelWeights:
    """A model's linear layers in order, with a ReLU between consecutive ones."""

    kind: ModelKind
    layers: tuple[Dense, ...]

    @classmethod
    def from_model_bytes(cls, data: bytes) -> ModelWeights:
        """The weights of a document written by ``tasks.publish.model_bytes``.

        >>> import torch
        >>> state = {"weight": torch.tensor([[1.0, 2.0]]), "bias": torch.tensor([3.0])}
        >>> buffer = io.BytesIO()
        >>> torch.save({"kind": "logreg", "features": 2, "state_dict": state}, buffer)
        >>> weights = ModelWeights.from_model_bytes(buffer.getvalue())
        >>> weights.architecture, weights.layers[0].weight.tolist(), weights.layers[0].bias.tolist()
        (Architecture(kind=<ModelKind.LOGREG: 'logreg'>, widths=(2, 1)), [[1.0, 2.0]], [3.0])
        """
        import torch

        saved = torch.load(io.BytesIO(data), weights_only=True)
        kind = ModelKind(saved["kind"])
        model = kind.build(saved["features"], 0).to(torch.float64)
        model.load_state_dict(saved["state_dict"])  # strict: every layer, every shape
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        return cls(kind, tuple(Dense(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
                               for m in linears))

    @property
    def architecture(self) -> Architecture:
        return Architecture(self.kind, (self.layers[0].weight.shape[1],
                                        *(layer.weight.shape[0] for layer in self.layers)))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The probability of class 1, computed by the consumer from its revealed logits.

    >>> sigmoid(np.array([0.0, -800.0])).tolist()
    [0.5, 0.0]
    """
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # stable for any logit, unlike 1 / (1 + e^-z)


def plaintext_logits(weights: ModelWeights, x: np.ndarray) -> np.ndarray:
    """The model's logit for each row of ``x`` (``[rows, features]``), in float64."""
    hidden = np.asarray(x, dtype=np.float64)
    for number, layer in enumerate(weights.layers):
        hidden = hidden @ layer.weight.T + layer.bias
        if number < len(weights.layers) - 1:
            hidden = np.maximum(hidden, 0.0)
    return hidden[:, 0]


def plaintext_predict(weights: ModelWeights, x: np.ndarray) -> np.ndarray:
    """The reference: the probability of class 1 for each row, computed in the clear.

    >>> dense = Dense(np.array([[2.0, -1.0]]), np.array([0.0]))
    >>> plaintext_predict(ModelWeights(ModelKind.LOGREG, (dense,)), np.array([[1.0, 2.0]])).tolist()
    [0.5]
    """
    return sigmoid(plaintext_logits(weights, x))
