"""The utility of a coalition of providers in one round: how good their merged update is.

For a round that started from the global vector ``g``, provider ``j`` staged
``[n_j * delta_j, n_j]`` for secure aggregation. The model of a coalition ``S`` is what FedAvg
would have produced had only ``S`` taken part::

    w_S = g + (sum_{j in S} n_j delta_j) / (sum_{j in S} n_j),      w_{} = g

Its quality is measured on the validation rows (a bounded sample of every provider's holdout,
``validation_sample``) with the federation's own metric code (``flai.learning.local``): the
mean log loss and the accuracy. The utility a valuation strategy sees is the negative mean
log loss (smooth, so marginal gains are not swallowed by ties the way accuracy's are);
accuracy is reported alongside. The empty coalition's utility is the previous global model's.

This module is the plaintext reference; ``flai.mpc.secure_utilities`` computes the same
qualities on secret shares and reveals only them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import torch

from flai.learning.local import evaluation_counts
from flai.learning.metrics import summarise
from flai.learning.models import ModelKind, load_vector

if TYPE_CHECKING:
    from flai.valuation.shapley import Valuation

P = TypeVar("P", bound=Hashable)
Coalition = frozenset


@dataclass(frozen=True)
class Holdout:
    """A provider's validation rows: encoded features ``[r, F]`` (float32) and 0/1 labels."""

    features: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class Quality:
    """A coalition model's quality on the validation rows."""

    log_loss: float
    accuracy: float

    @property
    def utility(self) -> float:
        """What valuations compare: higher is better."""
        return -self.log_loss


def validation_sample(features: torch.Tensor, labels: torch.Tensor, rows: int, seed: int) -> Holdout:
    """At most ``rows`` holdout rows, drawn without replacement: the cap bounds the MPC cost.

    >>> sample = validation_sample(torch.zeros(10, 3), torch.ones(10), rows=4, seed=0)
    >>> tuple(sample.features.shape), tuple(sample.labels.shape)
    ((4, 3), (4,))
    """
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:rows]
    return Holdout(features[order], labels[order])


def coalition_model(global_vector: torch.Tensor, staged: Sequence[torch.Tensor]) -> torch.Tensor:
    """``g + sum(n_j delta_j) / sum(n_j)`` over the staged ``[n_j delta_j, n_j]``; ``g`` if none.

    >>> coalition_model(torch.zeros(2), [torch.tensor([2.0, 4.0, 2.0]), torch.tensor([0.0, 2.0, 2.0])]).tolist()
    [0.5, 1.5]
    """
    if not staged:
        return global_vector.to(torch.float64)
    total = torch.stack(list(staged)).sum(0)
    return global_vector.to(torch.float64) + total[:-1] / total[-1]


def coalition_qualities(global_vector: torch.Tensor, staged: Mapping[P, torch.Tensor],
                        holdouts: Sequence[Holdout], coalitions: Sequence[Coalition[P]],
                        ) -> list[Quality]:
    """The quality of every coalition's logistic-regression model on all ``holdouts``."""
    X = torch.cat([h.features for h in holdouts])
    y = torch.cat([h.labels for h in holdouts])
    model = ModelKind.LOGREG.build(X.shape[1], seed=0)
    qualities = []
    for coalition in coalitions:
        vector = coalition_model(global_vector, [staged[p] for p in sorted(coalition, key=str)])
        metrics = summarise(evaluation_counts(load_vector(model, vector), X, y))
        qualities.append(Quality(metrics.loss, metrics.accuracy))
    return qualities


class CoalitionUtility(Generic[P]):
    """The utility callable a valuation is given, over a quality oracle that works in batches.

    It keeps every coalition's ``Quality`` (accuracy included, for the round's lineage) and
    counts the batches it asked for: in MPC each batch is one pass of the protocol.
    """

    def __init__(self, evaluate: Callable[[list[Coalition[P]]], Sequence[Quality]]) -> None:
        self.evaluate = evaluate
        self.qualities: dict[Coalition[P], Quality] = {}
        self.batches = 0

    def __call__(self, coalitions: Sequence[Coalition[P]]) -> list[float]:
        new = list(dict.fromkeys(c for c in coalitions if c not in self.qualities))
        if new:
            self.batches += 1
            self.qualities.update(zip(new, self.evaluate(new)))
        return [self.qualities[c].utility for c in coalitions]


@dataclass(frozen=True)
class Valued(Generic[P]):
    """A round's valuation: each provider's value, every coalition's quality, the batches."""

    values: dict[P, float]
    qualities: dict[Coalition[P], Quality]
    batches: int


def value_round(strategy: Valuation, players: Sequence[P],
                evaluate: Callable[[Sequence[Coalition[P]]], Sequence[tuple[float, float]]]) -> Valued[P]:
    """Run ``strategy`` over ``evaluate`` (batch -> ``(log loss, accuracy)`` pairs): the
    ``drive`` rank 0 hands ``flai.mpc.secure_utilities``, e.g.
    ``functools.partial(value_round, ExactShapley(), providers)``.

    >>> from flai.valuation.shapley import LeaveOneOut
    >>> valued = value_round(LeaveOneOut(), "ab", lambda cs: [(1.0 - 0.25 * len(c), 0.5) for c in cs])
    >>> valued.values, valued.batches
    ({'a': 0.25, 'b': 0.25}, 1)
    """
    utility = CoalitionUtility(lambda coalitions: [Quality(*pair) for pair in evaluate(coalitions)])
    values = strategy.value(players, utility)
    return Valued(values, utility.qualities, utility.batches)
