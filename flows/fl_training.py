"""A training job: rounds of ``fl_round`` until the budget is spent or the target is met.

The rounds' steps are task runs of this flow run (``round-3/train-locally``, ...), and each
round's table and the training curve are its artifacts: the run whose page an operator opens.

A job resumes: it starts after the last round the chain holds for its task id, from that
round's recorded model, so a retried run (same task id) continues where its previous attempt
stopped and the rounds already recorded stay as they are. Across processes this needs a
chain that outlives them (a node URL); the embedded chain starts empty in every process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from prefect import flow, get_run_logger

from actors import federation as fed
from flai.learning.features import feature_count
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig, ServerOptimiser, strategy_for
from flai.reporting import CurvePoint, PublishedCurve, report_training
from flai.settings import get_settings
from flai.valuation.shapley import Valuation
from flows.fl_round import RoundResult, fl_round
from tasks.governance import approved_task
from tasks.lineage import TaskSpec, resume_point
from tasks.publish import content_store


class TrainingJobError(ValueError):
    """A training job asks for something the federation cannot do."""


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
    server: ServerOptimiser = ServerOptimiser.FEDAVG  # how the server applies the mean update
    # How a job that pays values each round's updates, in MPC (``ExactShapley()``; past 8
    # providers GTG-Shapley); None: a job that pays nobody, its rounds neither valued nor
    # recorded for settlement.
    valuation: Valuation | None = None
    # FLAI base units each provider must have bonded in ProviderStaking to be selected (a paid
    # task's minimum); 0: no stake required.
    min_stake: int = 0
    # The domain whose DAO approved this task in TaskRegistry (the task id is its name there):
    # the job then refuses to start unless the chain says approved, and records every round's
    # contributions for settlement. None: an ungoverned job, marked so in lineage, paid by nobody.
    governed_by: str | None = None

    @property
    def governance(self) -> str:
        return f"dao:{self.governed_by}" if self.governed_by else "ungoverned"

    def __post_init__(self) -> None:
        if self.valuation is not None and self.kind is not ModelKind.LOGREG:
            # The coalition utilities run a logistic regression's forward pass on shares.
            raise TrainingJobError(f"valuation is computed for {ModelKind.LOGREG.value} "
                                   f"models only, not {self.kind.value}")


@dataclass(frozen=True)
class TrainingResult:
    job: TrainingJob
    rounds: list[RoundResult]  # trained by this run; empty when the chain held the whole job
    global_vector: torch.Tensor = field(repr=False)
    # The curve of this run's rounds: its PNG in data_dir and in the store, its artifact.
    curve: PublishedCurve | None
    resumed_after: int = 0  # rounds already on chain when this run started

    @property
    def final(self) -> RoundResult:
        """The last round this run trained (check ``rounds`` first after a resume)."""
        return self.rounds[-1]


def _reached(job: TrainingJob, accuracy: float | None) -> bool:
    return (job.target_accuracy is not None and accuracy is not None
            and accuracy >= job.target_accuracy)


@flow(name="fl-training", flow_run_name="{job.task_id}")
def fl_training(job: TrainingJob,
                on_round: Callable[[RoundResult], None] | None = None) -> TrainingResult:
    strategy = strategy_for(job.mu, job.fit, job.server)
    features = feature_count(job.federation.dataset.schema)
    # The spec every round registers the task with: what round 1 asks of the providers.
    spec = TaskSpec(job.task_id, job.federation.dataset.schema.name, job.kind.value, features,
                    type(strategy).__name__, strategy.configure_fit(1), job.seed, job.governance)
    if job.governed_by:
        approved_task(job.task_id)  # the DAO's approval, on chain, before anything else
    # Where the chain says this task stands; read before any actor starts.
    start = resume_point(spec)
    if start.vector is None:
        vector = to_vector(job.kind.build(features, job.seed))
    else:
        vector = start.vector
        get_run_logger().info("task %s: %d round(s) already on chain; resuming at round %d",
                              job.task_id, start.rounds_done, start.rounds_done + 1)
    not_started = fed.start(job.federation)
    if not_started:
        get_run_logger().warning("providers that could not start: %s", not_started)
    results: list[RoundResult] = []
    # Recorded rounds that already reached the target leave nothing to train.
    remaining = () if _reached(job, start.accuracy) else range(start.rounds_done + 1, job.rounds + 1)
    for round_number in remaining:
        result = fl_round(job.federation, spec, round_number, vector, job.kind, strategy,
                          job.seed, job.valuation, job.min_stake,
                          paid=job.valuation is not None or job.governed_by is not None)
        results.append(result)
        vector = result.global_vector
        if on_round is not None:
            on_round(result)
        if _reached(job, result.metrics.accuracy):
            get_run_logger().info("target accuracy %.4f reached in round %d",
                                  job.target_accuracy, round_number)
            break
    # The training curve of this run's rounds, attached to this run.
    curve = report_training(job.task_id, [CurvePoint(r.round_number, r.train_loss, r.metrics)
                                          for r in results], get_settings().data_dir,
                            content_store()) if results else None
    return TrainingResult(job, results, vector, curve, start.rounds_done)
