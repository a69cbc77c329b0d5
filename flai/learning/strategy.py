"""Aggregation strategies, after Flower's: the algorithm behind a small interface.

A strategy tells providers how to train this round (``configure_fit``) and turns the securely
aggregated update into the next global model (``aggregate_fit``). It never sees a single
provider's update: MPC hands it only ``sum_i n_i * delta_i`` and ``sum_i n_i``. Variants
override one method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FitConfig:
    """What each provider is asked to do in a round."""

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 0.05
    proximal_mu: float = 0.0  # FedProx: weight of (mu/2)*||w - w_global||^2 in the local loss


class FedAvg:
    """Weighted federated averaging (McMahan et al., 2017), weights = sample counts.

    >>> FedAvg().aggregate_fit(torch.zeros(2), torch.tensor([2.0, 4.0]), 4.0).tolist()
    [0.5, 1.0]
    """

    def __init__(self, fit: FitConfig = FitConfig()) -> None:
        self.fit = fit

    def configure_fit(self, round_number: int) -> FitConfig:
        return self.fit

    def aggregate_fit(
        self, global_vector: torch.Tensor, weighted_delta_sum: torch.Tensor, total_weight: float
    ) -> torch.Tensor:
        return global_vector + weighted_delta_sum / total_weight


class FedProx(FedAvg):
    """FedAvg whose providers add a proximal term (Li et al., 2020) against client drift."""

    def __init__(self, fit: FitConfig = FitConfig(), mu: float = 0.01) -> None:
        super().__init__(fit)
        self.mu = mu

    def configure_fit(self, round_number: int) -> FitConfig:
        return FitConfig(**{**self.fit.__dict__, "proximal_mu": self.mu})


def strategy_for(mu: float, fit: FitConfig) -> FedAvg:
    """FedProx when a proximal weight is given, FedAvg otherwise."""
    return FedProx(fit, mu) if mu > 0 else FedAvg(fit)
