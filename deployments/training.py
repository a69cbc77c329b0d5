"""``train``: a federated training job with plain JSON parameters, for deployments and the UI.

``flows.fl_training`` takes a ``TrainingJob`` (a federation, a model kind, a fit config); a
deployment run, started by a schedule, the UI or ``run_deployment``, can only pass JSON. This
flow takes the job as named scalars, checks them and the parts the job needs
(``flai.validation``) before any work, prepares the demo providers' partitions under
``data_dir`` where they are missing, and runs the job as a subflow. Every run gets
its own task id (the run's id ends it), so a nightly job never collides with an earlier
night's lineage on chain, and a retry of a failed or crashed run (``prefect flow-run retry``:
the same run id) resumes its job after the last round it recorded.

    from prefect.deployments import run_deployment
    run_deployment("train/nightly-heart", parameters={"rounds": 2}, timeout=600)
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flai.datasets import Dataset, partitioning_for
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig, ServerOptimiser
from flai.settings import get_settings
from flai.validation import check_training


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
    server: ServerOptimiser = ServerOptimiser.FEDAVG,
    epochs: Annotated[int, Field(ge=1)] = 1,
    learning_rate: Annotated[float, Field(gt=0)] = FitConfig().learning_rate,
    target_accuracy: Annotated[float | None, Field(gt=0, le=1)] = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` across its providers with secure aggregation.

    heart has four real hospitals (``providers`` is ignored); census is split into
    ``providers`` (default 4) by a Dirichlet(``alpha``) label skew. ``mu`` > 0 is FedProx;
    ``server`` picks the server-side optimiser (FedAvg, FedAvgM, FedAdagrad, FedAdam, FedYogi).
    Returns the final round's federated metrics and the task id its lineage is under.
    """
    from actors.federation import federation_for
    from flows.fl_training import TrainingJob, fl_training

    how = partitioning_for(dataset, providers, alpha, seed)
    settings = get_settings()
    # Bad input or a dead part fails the run here, before Ray starts or a round runs.
    check_training(dataset, how, mu, learning_rate, seed, settings)
    # The demo's providers: each one's partition, written only where missing.
    federation = federation_for(dataset, how, settings)
    # The whole run id: unique per run, and the same on a retry of it, which then resumes.
    task_id = f"{federation.name}-{model.value}-s{seed}-{flow_run.id}"
    job = TrainingJob(task_id, federation, model, rounds, FitConfig(epochs=epochs, learning_rate=learning_rate),
                      mu, target_accuracy, seed, server)
    get_run_logger().info("task %s: %d providers; its lineage: `flai lineage %s`", task_id,
                          len(federation.providers), task_id)
    # The job: rounds of select, check, train, aggregate, evaluate, publish, record.
    result = fl_training(job)
    recorded = result.resumed_after + len(result.rounds)
    if not result.rounds:  # a retry after the last round was recorded: nothing left to train
        get_run_logger().info("task %s: all %d round(s) were already on chain", task_id, recorded)
        return {"task_id": task_id, "rounds": recorded, "resumed_after": result.resumed_after}
    final = result.final
    get_run_logger().info("task %s done after %d round(s): federated accuracy %.4f, AUC %.4f",
                          task_id, recorded, final.metrics.accuracy, final.metrics.auc)
    return {
        "task_id": task_id,
        "rounds": recorded,
        "resumed_after": result.resumed_after,
        "participants": list(final.participants),
        "accuracy": final.metrics.accuracy,
        "balanced_accuracy": final.metrics.balanced_accuracy,
        "auc": final.metrics.auc,
    }
