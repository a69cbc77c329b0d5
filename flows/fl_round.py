"""One federated learning round: its steps, each a task of the calling flow run.

A round is not a flow of its own: every subflow run ends by waiting out the engine's 1-second
heartbeat sleep (0.9 s a round, measured), and its artifacts would sit on the subflow's page
instead of the training run the operator opens. Each step's task run is named after its round
(``round-3/train-locally``), so the training run's task list reads round by round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from prefect import Task

from actors.federation import Federation
from flai.learning.features import feature_count
from flai.learning.metrics import Metrics
from flai.learning.models import ModelKind
from flai.learning.strategy import FedAvg
from flai.quality import QualityReport
from flai.reporting import report_round
from flai.rewards.contributions import Contribution
from flai.valuation.shapley import Valuation
from tasks.evaluation import federated_evaluate
from tasks.lineage import TaskSpec, record_lineage
from tasks.local_training import LocalTraining, train_locally
from tasks.publish import publish_global_model
from tasks.quality import QualityGate, check_quality
from tasks.secure_aggregation import secure_aggregate
from tasks.selection import select_participants
from tasks.settlement import record_contributions
from tasks.valuation import RoundValuation, value_contributions


@dataclass(frozen=True)
class RoundResult:
    round_number: int
    participants: tuple[str, ...]  # whose updates are in the aggregate
    dropped: dict[str, str]  # provider -> why it left the round (in the model or not)
    samples: int
    train_loss: float  # sample-weighted mean of the participants' reported losses
    metrics: Metrics  # federated evaluation of the new global model
    evaluated: tuple[str, ...]  # whose holdout counts are in that evaluation's sum
    secure_aggregation_s: float
    quality: dict[str, QualityReport]  # every verdict of the quality gate, passing or not
    quality_report_hash: str  # combined over the verdicts, as recorded on chain
    model_cid: str  # of the encrypted model in the content store
    model_sha256: str  # of the plaintext model
    tx_hash: str  # the transaction that recorded the round on chain
    block_number: int
    global_vector: torch.Tensor = field(repr=False)
    valuation: RoundValuation | None = None  # None: the job values no round, or this one failed

    @property
    def values(self) -> dict[str, float]:
        """Each participant's value in this round; empty when the round was not valued."""
        return {} if self.valuation is None else self.valuation.values


def in_round(step: Task, round_number: int) -> Task:
    """The step with its task run named after the round: ``round-3/train-locally``."""
    return step.with_options(task_run_name=f"round-{round_number}/{step.name.replace('_', '-')}")


def fl_round(federation: Federation, spec: TaskSpec, round_number: int, start: torch.Tensor,
             kind: ModelKind, strategy: FedAvg, seed: int = 0,
             valuation: Valuation | None = None, min_stake: int = 0,
             paid: bool = False) -> RoundResult:
    """Train the global model ``start`` for one round of the task ``spec`` registers (as asked
    in round 1, whatever the strategy learns later), as tasks of the current flow run, and
    attach the round's table to that run. With ``valuation`` the round also values its
    participants' updates in MPC; a ``paid`` round records every provider's contribution
    (valued or not: an unvalued round weighs by samples) for settlement."""
    task_id = spec.task_id
    round_id = f"{task_id}/round-{round_number}"
    features = feature_count(federation.dataset.schema)
    # Who is here.
    selection = in_round(select_participants, round_number)(federation, min_stake)
    # Each provider checks its own data; those that fail sit the round out.
    gate = in_round(check_quality, round_number)(federation, selection.participants)
    # Train where the data lives; each provider stages its update.
    training = in_round(train_locally, round_number)(
        federation, gate.passed, f"{round_id}/update", start, kind,
        strategy.configure_fit(round_number), seed + round_number)
    # Aggregate: the aggregator learns sum(n_i * delta_i) and sum(n_i) only. A provider
    # that drops out of the session is left out of a re-run, and of the rest of the round.
    aggregate = in_round(secure_aggregate, round_number)(
        federation, training.contributors, f"{round_id}/update", len(start) + 1, round_number,
        selection.incarnations)
    model = strategy.aggregate_fit(start, aggregate.total[:-1], aggregate.total[-1].item())
    # Value the updates in the accepted aggregate, in MPC: only coalition utilities are
    # revealed, to the aggregator. A failed valuation leaves the round without values.
    valued = None if valuation is None else in_round(value_contributions, round_number)(
        federation, aggregate.parties, f"{round_id}/update", start, valuation, round_number,
        seed + round_number, selection.incarnations)
    # Evaluate the new model where the data lives; only the summed counts are revealed.
    present = tuple(name for name in gate.passed
                    if name not in training.lost and name not in aggregate.dropped)
    evaluation = in_round(federated_evaluate, round_number)(
        federation, present, f"{round_id}/eval", model, kind, seed, round_number,
        selection.incarnations)
    # The summed holdout counts give the federation's label prior for the next rounds.
    strategy.aggregate_evaluate(evaluation.metrics)
    reports = [training.reports[name] for name in aggregate.parties]
    samples = sum(report.samples for report in reports)
    # Seal the model under the task's key and store it; record the round on chain.
    published = in_round(publish_global_model, round_number)(task_id, round_number, kind, features,
                                                             model)
    lineage = in_round(record_lineage, round_number)(
        spec, round_number, published, aggregate.parties, gate.report_hash, evaluation.metrics,
        samples)
    result = RoundResult(
        round_number=round_number,
        participants=aggregate.parties,
        # The first step a provider dropped out of says why.
        dropped=(evaluation.dropped | aggregate.dropped | training.dropped | gate.dropped
                 | selection.dropped),
        samples=samples,
        train_loss=sum(r.train_loss * r.samples for r in reports) / samples,
        metrics=evaluation.metrics,
        evaluated=evaluation.parties,
        secure_aggregation_s=aggregate.seconds,
        quality=gate.verdicts,
        quality_report_hash=gate.report_hash,
        model_cid=published.cid,
        model_sha256=published.sha256,
        tx_hash=lineage.tx_hash,
        block_number=lineage.block_number,
        global_vector=model,
        valuation=valued,
    )
    if paid:
        # What settlement pays from: every provider's samples, verdict, dropout and value.
        in_round(record_contributions, round_number)(
            task_id, round_number, _contributions(result, training, gate))
    report_round(task_id, round_number, result.participants, result.dropped, result.quality,
                 result.train_loss, result.metrics, result.model_cid, result.tx_hash,
                 result.block_number, result.values)
    return result


def _contributions(result: RoundResult, training: LocalTraining,
                   gate: QualityGate) -> list[Contribution]:
    """One contribution per provider the round knows of: selected, gated or dropped."""
    names = sorted({*result.participants, *result.dropped, *result.quality})
    return [Contribution(name,
                         training.reports[name].samples if name in training.reports else 0,
                         name in gate.passed,
                         # Whose update is in the model contributed, whatever befell it later.
                         "" if name in result.participants else result.dropped.get(name, ""),
                         result.values.get(name))
            for name in names]
