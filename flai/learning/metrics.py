"""Model quality from additive counts, so it can be computed from a secure sum.

Each provider contributes ``[n, tp, fp, tn, fn, loss_sum, positive score histogram,
negative score histogram]``; the sum over providers gives the federation's accuracy,
balanced accuracy, log loss and AUC (from the histograms, exact up to ties within a bin).

The histograms bin the *logit*, not the probability: ``SCORE_BINS`` bins of width 1/128 over
``[-LOGIT_RANGE, LOGIT_RANGE]``. A model whose probabilities all lie in [0, 0.01) (nearly
all-negative predictions on a skewed shard) put every score into one probability bin of a
100-bin histogram and reported AUC 0.5; in logit bins they spread over hundreds of bins, so
the AUC is exact unless two scores are within 1/128 of a logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOGIT_RANGE = 16.0  # a probability within 1.1e-7 of 0 or 1 shares the end bin
SCORE_BINS = 4096


def score_bin(logits: torch.Tensor) -> torch.Tensor:
    """The histogram bin of each logit.

    >>> score_bin(torch.tensor([-100.0, 0.0, 1 / 128, 100.0])).tolist()
    [0, 2048, 2049, 4095]
    """
    width = 2 * LOGIT_RANGE / SCORE_BINS
    return torch.clamp(((logits + LOGIT_RANGE) / width).floor().long(), 0, SCORE_BINS - 1)


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
    positive_rate: float | None = None  # share of positive labels; None: not from counts


def summarise(counts: torch.Tensor) -> Metrics:
    """Metrics from summed counts.

    >>> c = torch.zeros(len(count_layout()), dtype=torch.float64)
    >>> c[:6] = torch.tensor([4, 1, 0, 2, 1, 2.0]); c[6 + 3000] = 1; c[6 + 2100] = 1
    >>> c[6 + SCORE_BINS + 10] = 2
    >>> summarise(c)
    Metrics(samples=4, accuracy=0.75, balanced_accuracy=0.75, auc=1.0, loss=0.5, positive_rate=0.5)
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
        positive_rate=(tp + fn) / n if n else None,
    )
