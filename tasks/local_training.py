"""Local training at every participant; only each provider's report comes back."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from actors.reports import FitReport
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig
from flai.settings import get_settings


@dataclass(frozen=True)
class LocalTraining:
    reports: dict[str, FitReport]
    lost: dict[str, str] = field(default_factory=dict)  # no report: gone, died, silent, failed
    refused: dict[str, str] = field(default_factory=dict)  # reported, but will not share its update

    @property
    def contributors(self) -> tuple[str, ...]:
        return tuple(name for name, report in self.reports.items() if report.accepted)

    @property
    def dropped(self) -> dict[str, str]:
        return self.lost | self.refused


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def train_locally(federation: fed.Federation, participants: tuple[str, ...], contribution_id: str,
                  global_vector: torch.Tensor, kind: ModelKind, config: FitConfig,
                  seed: int) -> LocalTraining:
    reports, failed = fed.call_each(
        federation, participants,
        lambda provider: provider.fit.remote(contribution_id, global_vector, kind, config, seed),
        get_settings().provider_call_timeout_s)
    training = LocalTraining(
        reports, {name: f"{why} during local training" for name, why in failed.items()},
        {name: f"update refused: {report.reason}" for name, report in reports.items()
         if not report.accepted})
    if training.dropped:
        get_run_logger().warning("dropped during training: %s", training.dropped)
    return training
