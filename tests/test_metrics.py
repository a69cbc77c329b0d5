"""Federated metrics from summed counts equal the same metrics computed on pooled predictions."""

from __future__ import annotations

import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from flai.learning.local import evaluation_counts
from flai.learning.metrics import summarise


class Fixed(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.logits[X[:, 0].long()].unsqueeze(1)


def test_auc_does_not_collapse_when_every_prediction_is_negative():
    """The 8-provider census model predicted probabilities below 0.05 for everyone; a
    100-bin probability histogram then reported AUC 0.5 for a model whose AUC is 0.85."""
    generator = torch.Generator().manual_seed(0)
    y = (torch.rand(30_000, generator=generator) < 0.06).float()
    logits = (-5 + 2 * y + 1.2 * torch.randn(30_000, generator=generator)).clamp(-6.9, -3)
    assert torch.sigmoid(logits).max() < 0.05

    counts = sum(evaluation_counts(Fixed(logits), torch.arange(30_000.0)[part, None], y[part])
                 for part in torch.arange(30_000).chunk(8))  # eight providers, summed
    metrics = summarise(counts)
    assert abs(metrics.auc - roc_auc_score(y.numpy(), logits.numpy())) < 1e-3
    assert metrics.samples == 30_000 and abs(metrics.accuracy - (1 - y.mean().item())) < 1e-6
