"""Model quality from additive counts, so it can be computed from a secure sum.

Each provider contributes ``[n, tp, fp, tn, fn, loss_sum, positive score histogram,
negative score histogram]``; the sum over providers gives the federation's accuracy,
balanced accuracy, log loss and AUC (from the histograms, exact up to ties within a bin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SCORE_BINS = 100


def count_layout() -> tuple[str, ...]:
    return ("n", "tp", "fp", "tn", "fn", "loss_sum",
            *(f"pos_{b}" for b in range(SCORE_BINS)), *(f"neg_{b}" for b in range(SCORE_BINS)))


@dataclass(frozen=True)
class Metrics:
    samples: int
    accuracy: float
    balanced_accuracy: float
    auc: float
    loss: float


def summarise(counts: torch.Tensor) -> Metrics:
    """Metrics from summed counts.

    >>> c = torch.zeros(len(count_layout()), dtype=torch.float64)
    >>> c[:6] = torch.tensor([4, 1, 0, 2, 1, 2.0]); c[6 + 90] = 1; c[6 + 40] = 1
    >>> c[6 + SCORE_BINS + 10] = 2
    >>> summarise(c)
    Metrics(samples=4, accuracy=0.75, balanced_accuracy=0.75, auc=1.0, loss=0.5)
    """
    n, tp, fp, tn, fn, loss_sum = (counts[i].item() for i in range(6))
    positives = counts[6 : 6 + SCORE_BINS]
    negatives = counts[6 + SCORE_BINS :]
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    # P(score_pos > score_neg) + 0.5 P(tie): negatives strictly below, half of the same bin.
    below = torch.cumsum(negatives, 0) - negatives
    pairs = positives.sum() * negatives.sum()
    auc = ((positives * (below + 0.5 * negatives)).sum() / pairs).item() if pairs else 0.5
    return Metrics(
        samples=round(n),
        accuracy=(tp + tn) / n if n else 0.0,
        balanced_accuracy=(recall + specificity) / 2,
        auc=auc,
        loss=loss_sum / n if n else 0.0,
    )
