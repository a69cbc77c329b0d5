"""Federated evaluation: every participant scores the new global model on its holdout; the
metrics come from the secure sum of their counts, so no provider's accuracy is revealed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.learning.metrics import Metrics, count_layout, summarise
from flai.learning.models import ModelKind
from flai.settings import get_settings
from tasks.secure_aggregation import Step, secure_sum_over


@dataclass(frozen=True)
class Evaluation:
    metrics: Metrics
    parties: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)


@task(cache_policy=NO_CACHE)
def federated_evaluate(federation: fed.Federation, participants: tuple[str, ...],
                       contribution_id: str, global_vector: torch.Tensor, kind: ModelKind,
                       seed: int, round_number: int, incarnations: Mapping[str, str]) -> Evaluation:
    reports, failed = fed.call_each(
        federation, participants,
        lambda provider: provider.evaluate.remote(contribution_id, global_vector, kind, seed),
        get_settings().provider_call_timeout_s)
    dropped = {name: f"{why} during federated evaluation" for name, why in failed.items()}
    summed = secure_sum_over(federation, tuple(reports), contribution_id, len(count_layout()),
                             incarnations=incarnations,
                             step=Step("federated evaluation", round_number))
    dropped |= summed.dropped
    if dropped:
        get_run_logger().warning("dropped from evaluation: %s", dropped)
    return Evaluation(summarise(summed.total), summed.parties, dropped)
