"""Aggregation strategies, after Flower's: the algorithm behind a small interface.

A strategy tells providers how to train this round (``configure_fit``) and turns the securely
aggregated update into the next global model (``aggregate_fit``). It never sees a single
provider's update: MPC hands it only ``sum_i n_i * delta_i`` and ``sum_i n_i``. Variants
override one method. Server-side optimisers (FedAvgM, FedAdagrad, FedAdam, FedYogi) keep their
state (momentum, second moment) in the strategy object, which lives as long as the job.
Every strategy learns the federation's label prior from the summed evaluation counts
(``aggregate_evaluate``) and hands it to the providers in later rounds (see ``FitConfig``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from flai.learning.config import FitConfig, LocalOptimiser, ServerOptimiser
from flai.learning.metrics import Metrics

__all__ = ["FitConfig", "LocalOptimiser", "ServerOptimiser", "FedAvg", "FedProx", "FedAvgM",
           "FedAdagrad", "FedAdam", "FedYogi", "strategy_for"]


class FedAvg:
    """Weighted federated averaging (McMahan et al., 2017), weights = sample counts.

    >>> FedAvg().aggregate_fit(torch.zeros(2), torch.tensor([2.0, 4.0]), 4.0).tolist()
    [0.5, 1.0]
    """

    def __init__(self, fit: FitConfig = FitConfig()) -> None:
        self.fit = fit
        self._label_prior: float | None = None

    def configure_fit(self, round_number: int) -> FitConfig:
        """``fit``, with the label prior once an evaluation has measured one."""
        if self._label_prior is None:
            return self.fit
        return replace(self.fit, label_prior=self._label_prior)

    def aggregate_evaluate(self, metrics: Metrics) -> None:
        """Take the federation's positive rate from a round's summed holdout counts.

        The holdouts are seeded random samples of every partition, so their pooled positive
        rate estimates the training rows' (census over 8 providers: 6.24% vs 6.19%). Round 1
        trains without it; nothing is revealed beyond the counts the evaluation reveals.
        """
        if metrics.positive_rate is not None:
            self._label_prior = metrics.positive_rate

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
        return replace(super().configure_fit(round_number), proximal_mu=self.mu)


class FedAvgM(FedAvg):
    """FedAvg with server momentum (Hsu et al., 2019): SGD with momentum on the pseudo-gradient
    ``-mean(delta)``, as in Flower's ``FedAvgM`` and PyTorch's SGD convention.

    >>> strategy = FedAvgM(server_learning_rate=1.0, server_momentum=0.5)
    >>> first = strategy.aggregate_fit(torch.zeros(1), torch.tensor([2.0]), 2.0)
    >>> first.tolist(), strategy.aggregate_fit(first, torch.tensor([2.0]), 2.0).tolist()
    ([1.0], [2.5])
    """

    def __init__(self, fit: FitConfig = FitConfig(), server_learning_rate: float = 1.0,
                 server_momentum: float = 0.9) -> None:
        super().__init__(fit)
        self.server_learning_rate, self.server_momentum = server_learning_rate, server_momentum
        self._momentum: torch.Tensor | None = None

    def aggregate_fit(
        self, global_vector: torch.Tensor, weighted_delta_sum: torch.Tensor, total_weight: float
    ) -> torch.Tensor:
        gradient = -weighted_delta_sum / total_weight  # an update is the opposite of a gradient
        self._momentum = (gradient if self._momentum is None
                          else self.server_momentum * self._momentum + gradient)
        return global_vector - self.server_learning_rate * self._momentum


class FedOpt(FedAvg):
    """Adaptive federated optimisation (Reddi et al., ICLR 2021), Flower's ``FedOpt`` family.

    With ``delta_t`` the sample-weighted mean update of round ``t``:
    ``m_t = beta_1 m_{t-1} + (1 - beta_1) delta_t``, ``v_t = second_moment(v_{t-1}, delta_t)``
    and ``x_{t+1} = x_t + step_size(t) m_t / (sqrt(v_t) + tau)``. Variants override
    ``second_moment`` (and FedAdam ``step_size``).
    """

    def __init__(self, fit: FitConfig = FitConfig(), eta: float = 1e-1, beta_1: float = 0.9,
                 beta_2: float = 0.99, tau: float = 1e-3) -> None:
        super().__init__(fit)
        self.eta, self.beta_1, self.beta_2, self.tau = eta, beta_1, beta_2, tau
        self._m: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self._rounds = 0

    def aggregate_fit(
        self, global_vector: torch.Tensor, weighted_delta_sum: torch.Tensor, total_weight: float
    ) -> torch.Tensor:
        delta = weighted_delta_sum / total_weight
        if self._m is None:
            self._m, self._v = torch.zeros_like(delta), torch.zeros_like(delta)
        self._rounds += 1
        self._m = self.beta_1 * self._m + (1 - self.beta_1) * delta
        self._v = self.second_moment(self._v, delta)
        return global_vector + self.step_size(self._rounds) * self._m / (self._v.sqrt() + self.tau)

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Adagrad's: the sum of squared updates."""
        return v + delta**2

    def step_size(self, rounds: int) -> float:
        return self.eta


FedAdagrad = FedOpt


class FedAdam(FedOpt):
    """Adam on the server: an exponential second moment and Adam's bias-corrected step.

    >>> strategy = FedAdam(eta=0.1, tau=1e-9)
    >>> round(strategy.aggregate_fit(torch.zeros(1), torch.tensor([4.0]), 2.0).item(), 4)
    0.0742
    """

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return self.beta_2 * v + (1 - self.beta_2) * delta**2

    def step_size(self, rounds: int) -> float:
        # Flower counts server rounds from 1 and corrects with round + 1.
        return self.eta * math.sqrt(1 - self.beta_2 ** (rounds + 1)) / (1 - self.beta_1 ** (rounds + 1))


class FedYogi(FedOpt):
    """Yogi on the server: the second moment moves additively, so it cannot blow up."""

    def __init__(self, fit: FitConfig = FitConfig(), eta: float = 1e-2, beta_1: float = 0.9,
                 beta_2: float = 0.99, tau: float = 1e-3) -> None:
        super().__init__(fit, eta, beta_1, beta_2, tau)

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return v - (1 - self.beta_2) * delta**2 * torch.sign(v - delta**2)


_SERVER_OPTIMISERS: dict[ServerOptimiser, type[FedAvg]] = {
    ServerOptimiser.FEDAVG: FedAvg, ServerOptimiser.FEDAVGM: FedAvgM,
    ServerOptimiser.FEDADAGRAD: FedAdagrad, ServerOptimiser.FEDADAM: FedAdam,
    ServerOptimiser.FEDYOGI: FedYogi,
}


def strategy_for(mu: float, fit: FitConfig,
                 server: ServerOptimiser = ServerOptimiser.FEDAVG) -> FedAvg:
    """FedProx's proximal term when ``mu`` is given, under ``server``'s optimiser.

    >>> type(strategy_for(0.0, FitConfig())).__name__, type(strategy_for(0.1, FitConfig())).__name__
    ('FedAvg', 'FedProx')
    >>> strategy = strategy_for(0.1, FitConfig(), ServerOptimiser.FEDADAM)
    >>> type(strategy).__name__, strategy.configure_fit(1).proximal_mu
    ('FedAdam', 0.1)
    """
    if server is ServerOptimiser.FEDAVG:
        return FedProx(fit, mu) if mu > 0 else FedAvg(fit)
    return _SERVER_OPTIMISERS[server](replace(fit, proximal_mu=mu))
