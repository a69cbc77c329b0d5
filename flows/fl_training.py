"""A training job: rounds of ``fl_round`` until the budget is spent or the target is met."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from prefect import flow, get_run_logger

from actors import federation as fed
from flai.learning.features import feature_count
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig, strategy_for
from flai.reporting import CurvePoint, PublishedCurve, report_training
from flai.settings import get_settings
from flows.fl_round import RoundResult, fl_round
from tasks.publish import content_store


@dataclass(frozen=True)
class TrainingJob:
    task_id: str
    federation: fed.Federation
    kind: ModelKind = ModelKind.LOGREG
    rounds: int = 5
    fit: FitConfig = FitConfig()
    mu: float = 0.0  # FedProx proximal weight; 0 is plain FedAvg
    target_accuracy: float | None = None  # stop early once the federated accuracy reaches it
    seed: int = 0


@dataclass(frozen=True)
class TrainingResult:
    job: TrainingJob
    rounds: list[RoundResult]
    global_vector: torch.Tensor = field(repr=False)
    curve: PublishedCurve  # the training curve: its PNG in data_dir and in the store, its artifact

    @property
    def final(self) -> RoundResult:
        return self.rounds[-1]


@flow(name="fl-training", flow_run_name="{job.task_id}")
def fl_training(job: TrainingJob,
                on_round: Callable[[RoundResult], None] | None = None) -> TrainingResult:
    not_started = fed.start(job.federation)
    if not_started:
        get_run_logger().warning("providers that could not start: %s", not_started)
    strategy = strategy_for(job.mu, job.fit)
    features = feature_count(job.federation.dataset.schema)
    vector = to_vector(job.kind.build(features, job.seed))
    results: list[RoundResult] = []
    for round_number in range(1, job.rounds + 1):
        result = fl_round(job.federation, job.task_id, round_number, vector.tolist(), job.kind,
                          strategy, job.seed)
        results.append(result)
        vector = result.global_vector
        if on_round is not None:
            on_round(result)
        if job.target_accuracy is not None and result.metrics.accuracy >= job.target_accuracy:
            get_run_logger().info("target accuracy %.4f reached in round %d",
                                  job.target_accuracy, round_number)
            break
    # The training curve, attached to this run.
    curve = report_training(job.task_id, [CurvePoint(r.round_number, r.train_loss, r.metrics)
                                          for r in results], get_settings().data_dir, content_store())
    return TrainingResult(job, results, vector, curve)
