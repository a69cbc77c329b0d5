"""``flai query "SQL"``: one federated aggregate query, answered under disclosure control.

Exit codes: 0 answered; 2 refused before anything was released (unsafe or out-of-policy SQL,
epsilon outside the policy's range, privacy budget spent, a provider's policy refuses); 3 the
federation could not answer (a provider could not evaluate it, a party dropped out).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
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
    epsilon: Annotated[float | None, typer.Option(
        help="privacy loss of this query, within the data set's policy range; default: the "
             "policy's")] = None,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
) -> None:
    """Answer SQL over every provider's data; only the disclosure-controlled aggregate leaves."""
    from analytics import QueryRefused
    from flai.privacy_ledger import PrivacyBudgetExceeded
    from flows.fa_query import federated_query
    from tasks.fa import QueryFailed

    try:
        with _without_tracebacks(QueryRefused, PrivacyBudgetExceeded, QueryFailed):
            result = federated_query(sql, dataset, epsilon)
    except (QueryRefused, PrivacyBudgetExceeded) as refusal:
        console.print(f"[red]refused:[/] {refusal}")
        raise typer.Exit(2) from None
    except QueryFailed as failure:
        console.print(f"[red]failed:[/] {failure}")
        raise typer.Exit(3) from None
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
                      f"{d.cells_suppressed}; {d.release}, epsilon {d.epsilon or 0:g} (budget "
                      f"left {'-' if d.epsilon_remaining is None else f'{d.epsilon_remaining:.3g}'}); "
                      f"count noise std {d.count_noise_std or 0:.3g}; binning error bounds "
                      f"{d.error_bounds or '-'}; lineage tx {result.tx_hash}")


@contextlib.contextmanager
def _without_tracebacks(*expected: type[BaseException]) -> Iterator[None]:
    """Keep Prefect's log handlers from printing a traceback for an expected refusal."""
    def quiet(record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], expected))

    handlers = [h for h in logging.getLogger("prefect").handlers]
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
