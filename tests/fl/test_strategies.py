"""The MLP and FedProx through a real round, and the strategy interface on its own."""

from __future__ import annotations

import pytest
import torch

from flai.learning.metrics import Metrics, count_layout, summarise
from flai.learning.models import ModelKind
from flai.learning.strategy import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedProx,
    FedYogi,
    FitConfig,
    LocalOptimiser,
    ServerOptimiser,
    strategy_for,
)
from flows.fl_training import TrainingJob, fl_training

pytestmark = pytest.mark.slow


def test_mlp_with_fedprox_trains_across_the_hospitals(prefect_server, heart_federation):
    result = fl_training(TrainingJob("mlp-fedprox", heart_federation, ModelKind.MLP, rounds=2,
                                     fit=FitConfig(learning_rate=0.01, optimiser=LocalOptimiser.ADAM),
                                     mu=0.01))

    assert [len(r.participants) for r in result.rounds] == [4, 4]
    assert result.final.metrics.auc > 0.8
    assert result.final.train_loss < result.rounds[0].train_loss


def test_the_label_prior_comes_from_the_last_evaluation():
    strategy = strategy_for(0.1, FitConfig(), ServerOptimiser.FEDADAM)
    assert strategy.configure_fit(1).label_prior is None  # nothing evaluated yet
    counts = torch.zeros(len(count_layout()), dtype=torch.float64)
    counts[:6] = torch.tensor([8.0, 1, 0, 6, 1, 2.0])  # n, tp, fp, tn, fn: 2 positives in 8
    strategy.aggregate_evaluate(summarise(counts))
    assert strategy.configure_fit(2) == FitConfig(proximal_mu=0.1, label_prior=0.25)
    strategy.aggregate_evaluate(Metrics(10, 0.5, 0.5, 0.5, 0.7))  # no counts behind it
    assert strategy.configure_fit(3).label_prior == 0.25


def test_fedprox_changes_only_what_providers_are_asked():
    fit = FitConfig(epochs=2)
    assert type(strategy_for(0.0, fit)) is FedAvg and type(strategy_for(0.1, fit)) is FedProx
    assert strategy_for(0.1, fit).configure_fit(3) == FitConfig(epochs=2, proximal_mu=0.1)
    start, summed = torch.ones(3), torch.tensor([3.0, -6.0, 0.0])
    assert torch.equal(FedProx(fit, 0.1).aggregate_fit(start, summed, 3.0),
                       FedAvg(fit).aggregate_fit(start, summed, 3.0))


@pytest.mark.parametrize("strategy", [FedAvgM(), FedAdagrad(eta=0.5), FedAdam(), FedYogi(eta=0.1)],
                         ids=["FedAvgM", "FedAdagrad", "FedAdam", "FedYogi"])
def test_server_optimisers_converge_where_clients_point(strategy):
    """Clients that each move halfway to an optimum at 3: the server's model gets there."""
    model = torch.zeros(2)
    for _ in range(300):
        weights = torch.tensor([1.0, 3.0])
        deltas = torch.stack([(3 - model) / 2, (3 - model) / 2])
        model = strategy.aggregate_fit(model, (weights[:, None] * deltas).sum(0), weights.sum().item())
    assert torch.allclose(model, torch.full((2,), 3.0), atol=0.05)


def test_fedadam_follows_flowers_update_rule():
    strategy = FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3)
    model, m, v = torch.tensor([1.0]), torch.zeros(1), torch.zeros(1)
    for round_number in (1, 2, 3):
        delta = torch.tensor([0.5 * round_number])
        m, v = 0.9 * m + 0.1 * delta, 0.99 * v + 0.01 * delta**2
        eta = 0.1 * (1 - 0.99 ** (round_number + 1)) ** 0.5 / (1 - 0.9 ** (round_number + 1))
        expected = model + eta * m / (v.sqrt() + 1e-3)
        model = strategy.aggregate_fit(model, delta * 10, 10.0)
        assert torch.allclose(model, expected)
