"""``flai lineage TASK``: a task's rounds as the chain records them, every model verified."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from flai.cli import app

if TYPE_CHECKING:
    from tasks.lineage import VerifiedRound

console = Console()

EMBEDDED_HINT = (
    "The embedded chain (FLAI_CHAIN_URL unset) lives only in the process that trained. To keep "
    "lineage across processes, run `flai chain up` and export the FLAI_CHAIN_URL it prints "
    "before training.")


def short(value: str, head: int = 7, tail: int = 6) -> str:
    """``value`` with its middle elided, for table cells; the full value is printed below.

    >>> short("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq")
    'bafkrei…hc4yeq'
    """
    return value if len(value) <= head + tail + 1 else f"{value[:head]}…{value[-tail:]}"


def history_table(task: str, rounds: Sequence[VerifiedRound]) -> Table:
    table = Table(title=f"Lineage of {task}, verified against the chain")
    for column in ("round", "participants", "accuracy", "model CID", "tx", "verified"):
        table.add_column(column, justify="right" if column in ("round", "participants", "accuracy") else "left")
    for r in rounds:
        table.add_row(str(r.round_number), str(r.participants), f"{r.accuracy:.4f}",
                      short(r.model_cid), short(r.tx_hash), "✓" if r.verified else "✗")
    return table


def print_history(task: str, rounds: Sequence[VerifiedRound]) -> int:
    """Print the table, then each round's full CID and transaction (and problem); return the
    number of rounds that failed verification."""
    console.print(history_table(task, rounds))
    for r in rounds:
        console.print(f"round {r.round_number}: model {r.model_cid}  tx {r.tx_hash} (block {r.block_number})",
                      soft_wrap=True)
        if not r.verified:
            console.print(f"  [red]✗ {r.problem}[/]", soft_wrap=True)
    return sum(not r.verified for r in rounds)


@app.command("lineage")
def lineage(task: Annotated[str, typer.Argument(help="the task id the training job ran under")]) -> None:
    """Re-read TASK's rounds from the chain, fetch and decrypt every model, check its hashes.

    Exits non-zero when the chain holds no round of TASK or any round fails verification.
    """
    from tasks.lineage import ledger, verify_history

    rounds = verify_history(task)
    if not rounds:
        console.print(f"[red]the chain holds no rounds of task {task!r}.[/]")
        if ledger().chain.embedded:
            console.print(EMBEDDED_HINT, soft_wrap=True)
        raise typer.Exit(1)
    failed = print_history(task, rounds)
    if failed:
        console.print(f"[red]{failed} of {len(rounds)} round(s) failed verification[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(rounds)} round(s) verified ✓[/]")
