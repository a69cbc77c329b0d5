"""``flai up|down|status``: the local stack (Prefect server and UI, a worker, anvil, IPFS, Ray).

On a machine that reaches only loopback, run these and every client of the stack in one
network namespace, e.g. a shell started with ``scripts/loopback-only bash``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
from flai.datasets import Dataset
from flai.settings import get_settings
from flai.stack import (
    DEFAULT_PREFECT_PORT,
    DEFAULT_RAY_PORT,
    Action,
    ComponentReport,
    StackBusyError,
    StackConfig,
    StackError,
)

console = Console()
_STYLES = {Action.STARTED: "green", Action.ALREADY_RUNNING: "cyan", Action.RUNNING: "green",
           Action.STOPPED: "yellow", Action.NOT_RUNNING: "dim", Action.OFF: "dim"}


@app.command("up")
def up(
    prefect_port: Annotated[int, typer.Option(help="Prefect server and UI")] = DEFAULT_PREFECT_PORT,
    anvil_port: Annotated[int | None, typer.Option(help="default: settings.anvil_port")] = None,
    ray: Annotated[bool, typer.Option(help="also start a Ray head (FLAI_RAY_ADDRESS joins it)")] = False,
    ray_port: Annotated[int, typer.Option(help="the Ray head's GCS port")] = DEFAULT_RAY_PORT,
    ray_resources: Annotated[str | None, typer.Option(
        help='custom resources of the head, as JSON: \'{"org:cleveland": 1}\'')] = None,
    federation: Annotated[list[Dataset] | None, typer.Option(
        help="a data set whose demo federation starts on the Ray head and stays up "
             "(repeat for more); default: heart")] = None,
) -> None:
    """Start the local stack (what already runs is left alone) and print its environment."""
    from deployments import stack

    overrides = {"prefect_port": prefect_port, "ray": ray, "ray_port": ray_port,
                 "ray_resources": _resources(ray_resources)}
    if federation:
        overrides["federations"] = tuple(dataset.value for dataset in federation)
    if anvil_port is not None:
        overrides["anvil_port"] = anvil_port
    config = StackConfig.from_settings(get_settings(), **overrides)
    try:
        with console.status("starting the stack") as progress:
            reports = stack.up(config, on_step=lambda step: progress.update(step))
    except StackError as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(_table(f"FLAI stack for {config.data_dir}", reports))
    env = stack.client_env(config)
    console.print(f"UI: [bold]{config.ui_url}[/]   environment for clients "
                  f"(source {config.stack_dir / 'env'}):", soft_wrap=True)
    for name, value in env.items():
        console.print(f"export {name}={value}", soft_wrap=True, markup=False, highlight=False)


@app.command("down")
def down(
    force: Annotated[bool, typer.Option(
        help="cancel the flow runs that are active (running, pending, late) instead of refusing")] = False,
) -> None:
    """Stop the local stack; the Prefect database, the chain and IPFS stay on disk.

    Refuses while flow runs are active on the stack's server, as they would otherwise stay
    Running and hold their deployment's concurrency slot: wait for them, or --force.
    """
    from deployments import stack

    try:
        reports = stack.down(get_settings().data_dir, force=force)
    except StackBusyError as error:
        console.print(f"[red]{len(error.runs)} flow run(s) active; nothing was stopped:[/]")
        for run in error.runs:
            console.print(f"  {run.name}  {run.state}  {run.id}", soft_wrap=True, markup=False)
        console.print("Wait for them to finish, or `flai down --force` to cancel them.")
        raise typer.Exit(1) from None
    except StackError as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(_table("FLAI stack stopped", reports, brief=True, detail=True))


@app.command("status")
def status() -> None:
    """Which parts of the local stack run, where, and where their logs are."""
    from deployments import stack

    settings = get_settings()
    console.print(_table(f"FLAI stack for {settings.data_dir}",
                         stack.status(StackConfig.from_settings(settings))))


def _resources(text: str | None) -> dict[str, float]:
    if text is None:
        return {}
    try:
        resources = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--ray-resources") from None
    if not isinstance(resources, dict) or not all(
            isinstance(v, (int, float)) and v >= 0 for v in resources.values()):
        raise typer.BadParameter('expected {"name": amount, ...}', param_hint="--ray-resources")
    return {str(k): float(v) for k, v in resources.items()}


def _table(title: str, reports: Sequence[ComponentReport], brief: bool = False,
           detail: bool = False) -> Table:
    """One row a part: its state, and unless ``brief`` its pid, address, detail and log (the
    detail alone with ``detail``)."""
    columns = ("part", "state") if brief else ("part", "state", "pid", "address", "detail", "log")
    if brief and detail:
        columns += ("detail",)
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in reports:
        cells = {"part": r.name, "state": f"[{_STYLES[r.action]}]{r.action.value}[/]",
                 "pid": str(r.pid or ""), "address": r.address or "", "detail": r.detail,
                 "log": str(r.log_file or "")}
        table.add_row(*(cells[column] for column in columns))
    return table
