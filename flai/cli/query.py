"""``flai query "SQL"``: one federated aggregate query, answered under disclosure control."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flai.cli import app
from flai.datasets import Dataset

console = Console()


class OutputFormat(str, enum.Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="one aggregate SELECT over the data set's table")],
    dataset: Annotated[Dataset, typer.Option()] = Dataset.HEART,
    epsilon: Annotated[float | None, typer.Option(help="differential privacy; spends budget")] = None,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
) -> None:
    """Answer SQL over every provider's data; only the disclosure-controlled aggregate leaves."""
    from analytics import QueryRefused
    from flai.privacy_ledger import PrivacyBudgetExceeded
    from flows.fa_query import federated_query

    try:
        result = federated_query(sql, dataset, epsilon)
    except (QueryRefused, PrivacyBudgetExceeded) as refusal:
        console.print(f"[red]refused:[/] {refusal}")
        raise typer.Exit(2) from None
    if output is OutputFormat.CSV:
        sys.stdout.write(result.table.to_pandas().to_csv(index=False))
    elif output is OutputFormat.JSON:
        sys.stdout.write(json.dumps({"rows": result.table.to_pylist(),
                                     "disclosure": result.disclosure.__dict__}, default=str) + "\n")
    else:
        table = Table(title=f"{dataset.value}: {len(result.participants)} providers")
        for name in result.table.column_names:
            table.add_column(name, justify="right")
        for row in result.table.to_pylist():
            table.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)
        d = result.disclosure
        console.print(f"groups released {d.groups_released}, suppressed (< {d.min_group_size} rows) "
                      f"{d.cells_suppressed}; epsilon {d.epsilon or 0:g} (remaining "
                      f"{'-' if d.epsilon_remaining is None else f'{d.epsilon_remaining:g}'}); "
                      f"error bounds {d.error_bounds or '-'}; lineage tx {result.tx_hash}")
