"""``flai data split``: lay out a demo split's partitions, one directory per split and provider.

This is the one step that writes providers' files, and it never overwrites one: a file that
exists with other rows (edited by its provider, or corrupt) is left alone and reported.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
from flai.datasets import Dataset

console = Console()
data = typer.Typer(help="Providers' partitions of the demo data sets.", no_args_is_help=True)
app.add_typer(data, name="data")


@data.command("split")
def split(
    dataset: Annotated[Dataset, typer.Option()] = Dataset.HEART,
    providers: Annotated[int | None, typer.Option(help="Dirichlet split into this many; "
                                                       "default: the natural sites")] = None,
    alpha: Annotated[float, typer.Option(help="Dirichlet label skew")] = 0.5,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write each provider's partition where its actor will load it; exit 2 if any file
    already holds other rows."""
    from flai.datasets import PartitionConflict, Partitioning, federation_name, split_partitions
    from flai.settings import get_settings

    how = Partitioning(providers, alpha, seed)
    try:
        files = split_partitions(dataset, get_settings().data_dir, how)
    except (PartitionConflict, ValueError) as refusal:
        console.print(f"[red]refused:[/] {refusal}")
        raise typer.Exit(2) from None
    table = Table(title=f"split {federation_name(dataset, how, len(files))}")
    table.add_column("provider")
    table.add_column("file")
    for provider, path in files.items():
        table.add_row(provider, str(path))
    console.print(table)
