"""``flai demo`` and ``flai train``: a federated training job, then the central baseline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flai.cli import app
from flai.datasets import Dataset, Partitioning
from flai.learning.models import ModelKind
from flai.settings import get_settings

console = Console()


@app.command()
def demo(
    dataset: Annotated[Dataset, typer.Option(help="heart: 4 real hospitals; census: Dirichlet")] = Dataset.HEART,
    providers: Annotated[int | None, typer.Option(help="provider count (census only)")] = None,
    rounds: Annotated[int, typer.Option(min=1)] = 5,
) -> None:
    """A complete training job on the embedded defaults, then the centrally trained baseline."""
    _run_training(dataset, Partitioning(providers if dataset is Dataset.CENSUS else None),
                  rounds, ModelKind.LOGREG, mu=0.0, epochs=1, learning_rate=0.05, seed=0)


@app.command()
def train(
    dataset: Annotated[Dataset, typer.Option()] = Dataset.CENSUS,
    providers: Annotated[int | None, typer.Option(help="Dirichlet providers; omit for heart's hospitals")] = 4,
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    model: Annotated[ModelKind, typer.Option()] = ModelKind.LOGREG,
    alpha: Annotated[float, typer.Option(help="Dirichlet label skew (smaller: more skewed)")] = 0.5,
    mu: Annotated[float, typer.Option(help="FedProx proximal weight; 0 is FedAvg")] = 0.0,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    learning_rate: Annotated[float, typer.Option()] = 0.05,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train a model across providers with secure aggregation."""
    how = Partitioning(None if dataset is Dataset.HEART else providers, alpha, seed)
    _run_training(dataset, how, rounds, model, mu, epochs, learning_rate, seed)


def _run_training(dataset: Dataset, how: Partitioning, rounds: int, kind: ModelKind, mu: float,
                  epochs: int, learning_rate: float, seed: int) -> None:
    from actors.federation import Federation
    from actors.provider import HOLDOUT_FRACTION
    from flai.cli.lineage import print_history
    from flai.datasets import federation_name, write_partitions
    from flai.learning.central import train_central
    from flai.learning.strategy import FitConfig
    from flows.fl_training import TrainingJob, fl_training
    from tasks.lineage import verify_history

    settings = get_settings()
    with console.status(f"Writing {dataset.value} partitions under {settings.data_dir}"):
        files = write_partitions(dataset, settings.data_dir, how)
    federation = Federation(federation_name(dataset, how, len(files)), dataset, tuple(files))
    fit = FitConfig(epochs=epochs, learning_rate=learning_rate)
    # Every run is a new task on chain: lineage is append-only, never rewritten.
    task_id = f"{federation.name}-{kind.value}-s{seed}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    job = TrainingJob(task_id, federation, kind, rounds, fit, mu,
                      seed=seed)
    table = Table(title=f"Federated training: {dataset.value}, {len(files)} providers, {kind.value}")
    for column in ("round", "participants", "dropped", "train loss", "fed. accuracy",
                   "bal. accuracy", "AUC", "secure agg. s"):
        table.add_column(column, justify="right" if column != "dropped" else "left")
    with _progress() as progress:
        bar = progress.add_task("starting providers and round 1", total=rounds)

        def on_round(result) -> None:
            m = result.metrics
            table.add_row(str(result.round_number), str(len(result.participants)),
                          ", ".join(f"{k}: {v}" for k, v in result.dropped.items()) or "-",
                          f"{result.train_loss:.4f}", f"{m.accuracy:.4f}",
                          f"{m.balanced_accuracy:.4f}", f"{m.auc:.4f}",
                          f"{result.secure_aggregation_s:.2f}")
            progress.update(bar, advance=1, description=f"round {result.round_number} done")

        result = fl_training(job, on_round=on_round)
    console.print(table)
    # Read the rounds back from the chain and check every stored model against its record.
    with console.status("Verifying the recorded lineage"):
        history = verify_history(job.task_id)
    print_history(job.task_id, history)
    console.print(f"training curve: {result.curve.path} (CID {result.curve.cid})", soft_wrap=True)
    with console.status("Training the same model centrally on the pooled data"):
        central = train_central(dataset, list(files.values()), kind, fit, rounds,
                                HOLDOUT_FRACTION, seed)
    federated = result.final.metrics
    comparison = Table(title="Federated vs central (same model, same epochs)")
    for column in ("", "accuracy", "balanced accuracy", "AUC", "log loss"):
        comparison.add_column(column, justify="right")
    for name, m in (("federated", federated), ("central", central)):
        comparison.add_row(name, f"{m.accuracy:.4f}", f"{m.balanced_accuracy:.4f}",
                           f"{m.auc:.4f}", f"{m.loss:.4f}")
    comparison.add_row("difference", f"{federated.accuracy - central.accuracy:+.4f}",
                       f"{federated.balanced_accuracy - central.balanced_accuracy:+.4f}",
                       f"{federated.auc - central.auc:+.4f}", f"{federated.loss - central.loss:+.4f}")
    console.print(comparison)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} rounds"), TimeElapsedColumn(),
                    console=console)
