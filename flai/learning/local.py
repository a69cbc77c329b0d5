"""What a provider does with its own rows: train a round, count how the model does.

Both run inside the provider's actor; only the returned summary leaves it, and the counts
leave only through secure summation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from flai.learning.metrics import SCORE_BINS, count_layout, score_bin
from flai.learning.models import to_vector
from flai.learning.strategy import FitConfig, LocalOptimiser

_loss = nn.BCEWithLogitsLoss()
_OPTIMISERS = {LocalOptimiser.SGD: torch.optim.SGD, LocalOptimiser.ADAM: torch.optim.Adam}


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: FitConfig, seed: int) -> float:
    """Train ``model`` in place on ``(X, y)``; return the mean training loss of the last epoch.

    With ``config.proximal_mu > 0`` the loss gains FedProx's ``mu/2 * ||w - w_start||^2``,
    where ``w_start`` is the global model the round began from. With ``config.label_prior``
    the logits are shifted by ``prior_shift`` while training.
    """
    anchor = to_vector(model).to(torch.float32)
    shift = prior_shift(y, config.label_prior)
    optimizer = _OPTIMISERS[config.optimiser](model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    epoch_loss = 0.0
    for _ in range(config.epochs):
        epoch_loss, batches = 0.0, 0
        for batch in torch.randperm(len(y), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss = _loss(model(X[batch]).squeeze(1) + shift, y[batch])
            if config.proximal_mu > 0:
                drift = torch.nn.utils.parameters_to_vector(model.parameters()) - anchor
                loss = loss + config.proximal_mu / 2 * drift.square().sum()
            loss.backward()
            optimizer.step()
            epoch_loss, batches = epoch_loss + loss.item(), batches + 1
        epoch_loss /= max(batches, 1)
    return epoch_loss


def prior_shift(y: torch.Tensor, label_prior: float | None) -> float:
    """``logit(local positive rate) - logit(label_prior)``: 0 without a prior.

    Under label skew a shard's best logit is the federation's plus this shift (Bayes' rule
    with another base rate), so training ``model(x) + shift`` on the shard fits the
    federation's model: the shift, not the weights, absorbs the shard's base rate. A
    one-class shard gets a large finite shift (rates smoothed by half a row each way) and
    barely moves the model, where unshifted it would pull every logit towards its class.

    >>> round(prior_shift(torch.tensor([1.0, 0.0, 0.0, 0.0]), 0.5), 3)
    -0.847
    >>> prior_shift(torch.tensor([1.0, 0.0]), None)
    0.0
    """
    if label_prior is None:
        return 0.0
    local = (y.sum().item() + 0.5) / (len(y) + 1)
    return math.log(local / (1 - local)) - math.log(label_prior / (1 - label_prior))


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
