"""Providers that die, and updates that must not be shared."""

from __future__ import annotations

import ray
import pytest
import torch

from actors import federation as fed
from actors.provider import Provider
from flai.datasets import partition_path
from flai.learning.features import feature_count
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig
from flai.settings import get_settings
from flows.fl_training import TrainingJob, fl_training
from tasks.secure_aggregation import RoundFailed, secure_sum_over

pytestmark = pytest.mark.slow


def test_provider_killed_during_a_job_is_dropped_and_the_job_completes(
        prefect_server, heart_federation):
    victim = heart_federation.providers[2]

    def kill_after_first_round(result) -> None:
        if result.round_number == 1:
            ray.kill(fed.provider(heart_federation, victim), no_restart=True)

    result = fl_training(TrainingJob("killed", heart_federation, rounds=3),
                         on_round=kill_after_first_round)

    assert [len(r.participants) for r in result.rounds] == [4, 3, 3]
    assert all(victim not in r.participants and victim in r.dropped for r in result.rounds[1:])
    assert result.final.metrics.accuracy > 0.7

    # It comes back under its name: the next job has it again.
    fed.start(heart_federation)
    again = fl_training(TrainingJob("rejoined", heart_federation, rounds=1))
    assert victim in again.final.participants and not again.final.dropped


def test_secure_sum_is_rerun_without_a_provider_that_died_after_training(heart_federation):
    start = to_vector(ModelKind.LOGREG.build(feature_count(heart_federation.dataset.schema), 0))
    reports = ray.get([fed.provider(heart_federation, name).fit.remote(
        "d/update", start, ModelKind.LOGREG, FitConfig(), 0) for name in heart_federation.providers])
    victim = heart_federation.providers[0]
    ray.kill(fed.provider(heart_federation, victim), no_restart=True)

    summed = secure_sum_over(heart_federation, heart_federation.providers, "d/update",
                             len(start) + 1)

    assert victim not in summed.parties and victim in summed.dropped
    assert summed.total[-1].item() == sum(r.samples for r in reports if r.provider != victim)


class NaNProvider(Provider):
    """A provider whose local training diverges."""

    def _local_update(self, global_vector, kind, config, seed):
        delta, loss, samples = super()._local_update(global_vector, kind, config, seed)
        delta[0] = float("nan")
        return delta, loss, samples


def test_nan_update_is_refused_by_its_provider_and_the_aggregate_is_unaffected(
        prefect_server, heart_federation):
    faulty = heart_federation.providers[1]
    # The same provider, same file and seed, but diverging: swap it in under its name.
    info = ray.get(fed.provider(heart_federation, faulty).describe.remote())
    ray.kill(fed.provider(heart_federation, faulty), no_restart=True)
    data_file = partition_path(get_settings().data_dir, heart_federation.split, faulty, "heart")
    ray.remote(num_cpus=0)(NaNProvider).options(
        name=heart_federation.actor_name(faulty), lifetime="detached").remote(
        faulty, heart_federation.dataset, data_file, 100.0)
    assert ray.get(fed.provider(heart_federation, faulty).describe.remote()) == info

    with_faulty = fl_training(TrainingJob("nan", heart_federation, rounds=1)).final

    assert faulty not in with_faulty.participants
    assert "non-finite update" in with_faulty.dropped[faulty]
    # The aggregate equals the one computed by the three healthy providers alone.
    healthy = fed.Federation(heart_federation.name + "-healthy", heart_federation.dataset,
                             tuple(p for p in heart_federation.providers if p != faulty),
                             heart_federation.split)
    fed.start(healthy)
    try:
        without = fl_training(TrainingJob("nan-healthy", healthy, rounds=1)).final
    finally:
        fed.stop(healthy)
    assert with_faulty.participants == without.participants
    assert torch.allclose(with_faulty.global_vector, without.global_vector, atol=1e-4)


def test_updates_over_the_norm_bound_are_refused_and_the_round_fails_clearly(
        prefect_server, heart_federation):
    strict = fed.Federation(heart_federation.name + "-strict", heart_federation.dataset,
                            heart_federation.providers, heart_federation.split)
    fed.start(strict, get_settings().model_copy(update={"max_update_norm": 1e-9}))
    try:
        with pytest.raises(RoundFailed, match="need 2"):
            fl_training(TrainingJob("bounded", strict, rounds=1))
    finally:
        fed.stop(strict)
