"""``train``: a federated training job with plain JSON parameters, for deployments and the UI.

``flows.fl_training`` takes a ``TrainingJob`` (a federation, a model kind, a fit config); a
deployment run, started by a schedule, the UI or ``run_deployment``, can only pass JSON. This
flow takes the job as named scalars, prepares the demo providers' partitions under
``data_dir`` when they are missing or differ, and runs the job as a subflow. Every run gets
its own task id (the run's id ends it), so a nightly job never collides with an earlier
night's lineage on chain.

    from prefect.deployments import run_deployment
    run_deployment("train/nightly-heart", parameters={"rounds": 2}, timeout=600)
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flai.datasets import Dataset, Partitioning, federation_name, write_partitions
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig
from flai.settings import get_settings


def _run_name() -> str:
    """``heart-logreg-2r-s0``: what the run trains, readable in the UI's run lists."""
    p = flow_run.parameters
    return f"{_plain(p['dataset'])}-{_plain(p['model'])}-{p['rounds']}r-s{p['seed']}"


def _plain(value: Any) -> Any:
    """An enum's value; anything else (a parameter still in its JSON form) as it is."""
    return getattr(value, "value", value)


@flow(name="train", flow_run_name=_run_name)
def train(
    dataset: Dataset = Dataset.HEART,
    rounds: Annotated[int, Field(ge=1)] = 5,
    model: ModelKind = ModelKind.LOGREG,
    providers: Annotated[int | None, Field(ge=2)] = None,
    alpha: Annotated[float, Field(gt=0)] = 0.5,
    mu: Annotated[float, Field(ge=0)] = 0.0,
    epochs: Annotated[int, Field(ge=1)] = 1,
    learning_rate: Annotated[float, Field(gt=0)] = 0.05,
    target_accuracy: Annotated[float | None, Field(gt=0, le=1)] = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` across its providers with secure aggregation.

    heart has four real hospitals (``providers`` is ignored); census is split into
    ``providers`` (default 4) by a Dirichlet(``alpha``) label skew. ``mu`` > 0 is FedProx.
    Returns the final round's federated metrics and the task id its lineage is under.
    """
    from actors.federation import Federation
    from flows.fl_training import TrainingJob, fl_training

    how = (Partitioning(None, alpha, seed) if dataset is Dataset.HEART
           else Partitioning(providers or 4, alpha, seed))
    # The demo's providers: each one's partition, written only where missing or different.
    files = write_partitions(dataset, get_settings().data_dir, how)
    federation = Federation(federation_name(dataset, how, len(files)), dataset, tuple(files))
    task_id = f"{federation.name}-{model.value}-s{seed}-{str(flow_run.id)[:8]}"
    job = TrainingJob(task_id, federation, model, rounds, FitConfig(epochs=epochs, learning_rate=learning_rate),
                      mu, target_accuracy, seed)
    get_run_logger().info("task %s: %d providers; its lineage: `flai lineage %s`", task_id,
                          len(files), task_id)
    # The job: rounds of select, check, train, aggregate, evaluate, publish, record.
    result = fl_training(job)
    final = result.final
    get_run_logger().info("task %s done after %d round(s): federated accuracy %.4f, AUC %.4f",
                          task_id, len(result.rounds), final.metrics.accuracy, final.metrics.auc)
    return {
        "task_id": task_id,
        "rounds": len(result.rounds),
        "participants": list(final.participants),
        "accuracy": final.metrics.accuracy,
        "balanced_accuracy": final.metrics.balanced_accuracy,
        "auc": final.metrics.auc,
    }
