"""``flai train``: an ungoverned federated training job (paid by nobody, marked so in lineage),
then the central baseline. ``flai demo`` (cli/demo.py) runs a governed one."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli import app
from flai.datasets import Dataset, Partitioning, partition_path, partitioning_for
from flai.learning.config import FitConfig, ModelKind, ServerOptimiser
from flai.settings import get_settings
from flai.validation import PreflightError, check_training

if TYPE_CHECKING:
    from actors.federation import Federation
    from flai.learning.metrics import Metrics

console = Console()


@app.command()
def train(
    dataset: Annotated[Dataset, typer.Option()] = Dataset.CENSUS,
    providers: Annotated[int | None, typer.Option(help="Dirichlet providers; omit for heart's hospitals")] = 4,
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    model: Annotated[ModelKind, typer.Option()] = ModelKind.LOGREG,
    alpha: Annotated[float, typer.Option(help="Dirichlet label skew (smaller: more skewed)")] = 0.5,
    mu: Annotated[float, typer.Option(help="FedProx proximal weight; 0 is FedAvg")] = 0.0,
    server: Annotated[ServerOptimiser, typer.Option(help="server-side optimiser")] = ServerOptimiser.FEDAVG,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    learning_rate: Annotated[float, typer.Option()] = FitConfig().learning_rate,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train a model across providers with secure aggregation."""
    _run_training(dataset, partitioning_for(dataset, providers, alpha, seed), rounds, model, server,
                  mu, epochs, learning_rate, seed)


def new_task_id(federation: str, kind: ModelKind, seed: int, now: datetime | None = None) -> str:
    """A task id no other run gets: what it trains, when, and 32 random bits, so runs started
    in the same second differ (lineage is append-only: a reused id would resume that task).

    >>> new_task_id("heart-4", ModelKind.LOGREG, 0, datetime(2026, 1, 2, 3, 4, 5))[:-8]
    'heart-4-logreg-s0-20260102T030405-'
    """
    started = now or datetime.now(UTC)
    return f"{federation}-{kind.value}-s{seed}-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


def preflight(dataset: Dataset, how: Partitioning, mu: float, learning_rate: float,
               seed: int) -> None:
    """Every check before any work (flai.validation); a failure is one line and exit code 2."""
    try:
        check_training(dataset, how, mu, learning_rate, seed, get_settings())
    except PreflightError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _run_training(dataset: Dataset, how: Partitioning, rounds: int, kind: ModelKind,
                  server: ServerOptimiser, mu: float, epochs: int, learning_rate: float,
                  seed: int) -> None:
    preflight(dataset, how, mu, learning_rate, seed)
    from actors.federation import federation_for
    from cli.lineage import print_history
    from flows.fl_training import TrainingJob, fl_training
    from tasks.lineage import verify_history

    settings = get_settings()
    with console.status(f"Writing missing {dataset.value} partitions under {settings.data_dir}"):
        federation = federation_for(dataset, how, settings)
    fit = FitConfig(epochs=epochs, learning_rate=learning_rate)
    # Every run is a new task on chain: lineage is append-only, never rewritten.
    job = TrainingJob(new_task_id(federation.name, kind, seed), federation, kind, rounds, fit, mu,
                      seed=seed, server=server)
    table = Table(title=f"Federated training: {dataset.value}, {len(federation.providers)} "
                        f"providers, {kind.value}")
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
    compare_with_central(dataset, federation, kind, fit, rounds, seed, result.final.metrics)


def compare_with_central(dataset: Dataset, federation: Federation, kind: ModelKind,
                         fit: FitConfig, rounds: int, seed: int, federated: Metrics) -> None:
    """Train the same model centrally on the pooled partitions and print its metrics next to
    the federated model's."""
    from actors.provider import HOLDOUT_FRACTION
    from flai.learning.central import train_central

    with console.status("Training the same model centrally on the pooled data"):
        files = [partition_path(get_settings().data_dir, federation.name, provider, dataset.schema.name)
                 for provider in federation.providers]
        central = train_central(dataset, files, kind, fit, rounds, HOLDOUT_FRACTION, seed)
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
