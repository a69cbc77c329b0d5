"""One federated learning round as a DAG of tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from prefect import flow

from actors.federation import Federation
from flai.learning.metrics import Metrics
from flai.learning.models import ModelKind
from flai.learning.strategy import FedAvg
from tasks.evaluation import federated_evaluate
from tasks.local_training import train_locally
from tasks.secure_aggregation import secure_aggregate
from tasks.selection import select_participants


@dataclass(frozen=True)
class RoundResult:
    round_number: int
    participants: tuple[str, ...]  # whose updates are in the aggregate
    dropped: dict[str, str]  # provider -> why it is not
    samples: int
    train_loss: float  # sample-weighted mean of the participants' reported losses
    metrics: Metrics  # federated evaluation of the new global model
    secure_aggregation_s: float
    global_vector: torch.Tensor = field(repr=False)


@flow(name="fl-round", flow_run_name="round-{round_number}")
def fl_round(federation: Federation, task_id: str, round_number: int, global_vector: list[float],
             kind: ModelKind, strategy: FedAvg, seed: int = 0) -> RoundResult:
    start = torch.tensor(global_vector, dtype=torch.float64)
    round_id = f"{task_id}/round-{round_number}"
    # Who is here.
    selection = select_participants(federation)
    # Train where the data lives; each provider stages its update.
    training = train_locally(federation, selection.participants, f"{round_id}/update", start, kind,
                             strategy.configure_fit(round_number), seed + round_number)
    # Aggregate: the aggregator learns sum(n_i * delta_i) and sum(n_i) only.
    aggregate = secure_aggregate(federation, training.contributors, f"{round_id}/update",
                                 len(start) + 1)
    model = strategy.aggregate_fit(start, aggregate.total[:-1], aggregate.total[-1].item())
    # Evaluate the new model where the data lives; only the summed counts are revealed.
    evaluation = federated_evaluate(federation, selection.participants, f"{round_id}/eval",
                                    model, kind, seed)
    reports = [training.reports[name] for name in aggregate.parties]
    samples = sum(report.samples for report in reports)
    return RoundResult(
        round_number=round_number,
        participants=aggregate.parties,
        dropped=selection.dropped | training.dropped | aggregate.dropped,
        samples=samples,
        train_loss=sum(r.train_loss * r.samples for r in reports) / samples,
        metrics=evaluation.metrics,
        secure_aggregation_s=aggregate.seconds,
        global_vector=model,
    )
