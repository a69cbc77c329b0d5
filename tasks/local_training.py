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
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def contributors(self) -> tuple[str, ...]:
        return tuple(name for name, report in self.reports.items() if report.accepted)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def train_locally(federation: fed.Federation, participants: tuple[str, ...], contribution_id: str,
                  global_vector: torch.Tensor, kind: ModelKind, config: FitConfig,
                  seed: int) -> LocalTraining:
    reports, dropped = fed.call_each(
        federation, participants,
        lambda provider: provider.fit.remote(contribution_id, global_vector, kind, config, seed),
        get_settings().provider_call_timeout_s)
    for name, report in reports.items():
        if not report.accepted:
            dropped[name] = f"update refused: {report.reason}"
    if dropped:
        get_run_logger().warning("dropped during training: %s", dropped)
    return LocalTraining(reports, dropped)
