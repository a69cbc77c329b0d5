"""The MLP and FedProx through a real round, and the strategy interface on its own."""

from __future__ import annotations

import pytest
import torch

from flai.learning.models import ModelKind
from flai.learning.strategy import FedAvg, FedProx, FitConfig, strategy_for
from flows.fl_training import TrainingJob, fl_training

pytestmark = pytest.mark.slow


def test_mlp_with_fedprox_trains_across_the_hospitals(prefect_server, heart_federation):
    result = fl_training(TrainingJob("mlp-fedprox", heart_federation, ModelKind.MLP, rounds=2,
                                     fit=FitConfig(learning_rate=0.01), mu=0.01))

    assert [len(r.participants) for r in result.rounds] == [4, 4]
    assert result.final.metrics.auc > 0.8
    assert result.final.train_loss < result.rounds[0].train_loss


def test_fedprox_changes_only_what_providers_are_asked():
    fit = FitConfig(epochs=2)
    assert type(strategy_for(0.0, fit)) is FedAvg and type(strategy_for(0.1, fit)) is FedProx
    assert strategy_for(0.1, fit).configure_fit(3) == FitConfig(epochs=2, proximal_mu=0.1)
    start, summed = torch.ones(3), torch.tensor([3.0, -6.0, 0.0])
    assert torch.equal(FedProx(fit, 0.1).aggregate_fit(start, summed, 3.0),
                       FedAvg(fit).aggregate_fit(start, summed, 3.0))
