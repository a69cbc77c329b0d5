"""``flai chain up|down|status``: a real EVM node (anvil) whose state survives restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli import app
from flai.settings import get_settings

chain_app = typer.Typer(help="Run anvil on 127.0.0.1 with its state under the data directory.")
app.add_typer(chain_app, name="chain")
console = Console()


def _chain_dir() -> Path:
    return get_settings().data_dir / "chain"


@chain_app.command("up")
def up(port: Annotated[int | None, typer.Option(help="default: settings.anvil_port")] = None) -> None:
    """Start anvil (idempotent); set FLAI_CHAIN_URL to the printed URL to use it."""
    from deployments import anvil
    from deployments.processes import ProcessError

    try:
        url = anvil.start(_chain_dir(), port or get_settings().anvil_port)
    except ProcessError as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"anvil is up at [bold]{url}[/]; use it with: export FLAI_CHAIN_URL={url}")


@chain_app.command("down")
def down() -> None:
    """Write anvil's chain to its state file and stop it; the next `up` loads it."""
    from deployments import anvil

    console.print("anvil stopped" if anvil.stop(_chain_dir()) else "anvil was not running")


@chain_app.command("status")
def status() -> None:
    from deployments import anvil

    console.print(anvil.status(_chain_dir()))
