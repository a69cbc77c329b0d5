"""What a provider does with its own rows: train a round, count how the model does.

Both run inside the provider's actor; only the returned summary leaves it, and the counts
leave only through secure summation.
"""

from __future__ import annotations

import torch
from torch import nn

from flai.learning.metrics import SCORE_BINS, count_layout, score_bin
from flai.learning.models import to_vector
from flai.learning.strategy import FitConfig

_loss = nn.BCEWithLogitsLoss()


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: FitConfig, seed: int) -> float:
    """Train ``model`` in place on ``(X, y)``; return the mean training loss of the last epoch.

    With ``config.proximal_mu > 0`` the loss gains FedProx's ``mu/2 * ||w - w_start||^2``,
    where ``w_start`` is the global model the round began from.
    """
    anchor = to_vector(model).to(torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    epoch_loss = 0.0
    for _ in range(config.epochs):
        epoch_loss, batches = 0.0, 0
        for batch in torch.randperm(len(y), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss = _loss(model(X[batch]).squeeze(1), y[batch])
            if config.proximal_mu > 0:
                drift = torch.nn.utils.parameters_to_vector(model.parameters()) - anchor
                loss = loss + config.proximal_mu / 2 * drift.square().sum()
            loss.backward()
            optimizer.step()
            epoch_loss, batches = epoch_loss + loss.item(), batches + 1
        epoch_loss /= max(batches, 1)
    return epoch_loss


@torch.no_grad()
def evaluation_counts(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Additive evaluation statistics (see ``flai.learning.metrics``), safe to sum securely."""
    model.eval()
    logits = model(X).squeeze(1)
    scores = torch.sigmoid(logits)
    predicted = scores >= 0.5
    positive = y >= 0.5
    bins = score_bin(logits)
    counts = torch.zeros(len(count_layout()), dtype=torch.float64)
    counts[0] = len(y)
    counts[1] = (predicted & positive).sum()
    counts[2] = (predicted & ~positive).sum()
    counts[3] = (~predicted & ~positive).sum()
    counts[4] = (~predicted & positive).sum()
    counts[5] = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
    counts[6 : 6 + SCORE_BINS] = torch.bincount(bins[positive], minlength=SCORE_BINS)
    counts[6 + SCORE_BINS :] = torch.bincount(bins[~positive], minlength=SCORE_BINS)
    return counts
