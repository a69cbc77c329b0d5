"""``flai chain up|down|status``: a real EVM node (anvil) whose state survives restarts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from flai.cli import app
from flai.settings import get_settings

chain_app = typer.Typer(help="Run anvil on 127.0.0.1 with its state under the data directory.")
app.add_typer(chain_app, name="chain")
console = Console()


def _state_dir():
    return get_settings().data_dir / "chain"


@chain_app.command("up")
def up(port: Annotated[int | None, typer.Option(help="default: settings.anvil_port")] = None) -> None:
    """Start anvil (idempotent); set FLAI_CHAIN_URL to the printed URL to use it."""
    from contracts import anvil

    url = anvil.start(_state_dir(), port or get_settings().anvil_port)
    console.print(f"anvil is up at [bold]{url}[/]; use it with: export FLAI_CHAIN_URL={url}")


@chain_app.command("down")
def down() -> None:
    """Stop anvil; its state stays on disk for the next `up`."""
    from contracts import anvil

    console.print("anvil stopped" if anvil.stop(_state_dir()) else "anvil was not running")


@chain_app.command("status")
def status() -> None:
    from contracts import anvil

    console.print(anvil.status(_state_dir()))
