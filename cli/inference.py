"""``flai infer``: pay for private predictions of your rows on an accepted model.

This process is the consumer's side: it reads the rows (the data set's columns, with a header;
the label may be absent), encodes them into the model's features here, and after the paid
request reads the predictions back from its own party. The coordinator's flow run sees the
batch size, the price and the time, never a row or a prediction; the model holder sees
neither. The consumer (``--as``, a named account of the data directory) pays from its FLAI:
``flai market buy --as NAME`` buys some through the Uniswap pool.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
from cli.rewards import flai_amount, flai_text
from flai.inference import Backend

if TYPE_CHECKING:
    import numpy as np

    from flows.inference import InferenceResult

console = Console()


@app.command()
def infer(
    model: Annotated[str, typer.Option(help="the accepted training task's name")],
    rows: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False,
                                       help="CSV of rows to predict")],
    backend: Annotated[Backend, typer.Option(help="mpc: 2-party MPC; he: CKKS (linear models)")] = Backend.MPC,
    as_name: Annotated[str, typer.Option("--as", help="the paying consumer's name")] = "consumer",
    max_price: Annotated[str | None, typer.Option(help="most FLAI to pay; default: the quote")] = None,
) -> None:
    """Pay for private predictions of INPUT's rows on MODEL; print them and the price paid."""
    from contracts import LedgerError
    from flows.inference import inference
    from tasks.inference import InferenceBudgetExceededError, ModelNotForSaleError, consumer_predictions

    limit = flai_amount(max_price) if max_price else None
    try:
        result = inference(model, as_name, encoded_rows(model, rows, as_name), backend, limit)
    except (LedgerError, ModelNotForSaleError, InferenceBudgetExceededError) as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(predictions_table(result, consumer_predictions(as_name)))
    console.print(f"paid {flai_text(result.price)} FLAI for {result.batch} row(s) "
                  f"(request {result.request_id}, {result.state.name.lower()}); lineage "
                  f"{result.lineage_cid}", soft_wrap=True)


def encoded_rows(model: str, rows: Path, consumer: str) -> Path:
    """``rows`` encoded into the model's features here, on the consumer's side, in a file of
    the consumer's under the data directory, which its party reads."""
    import numpy as np
    import pandas as pd

    from flai.datasets import Dataset
    from flai.learning.features import encode_features
    from flai.settings import get_settings
    from tasks.governance import governed_task

    schema = Dataset(governed_task(model).dataset).schema
    encoded = encode_features(pd.read_csv(rows), schema)
    path = get_settings().data_dir / "consumers" / consumer / f"rows-{uuid.uuid4().hex[:8]}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, encoded, delimiter=",")
    return path


def predictions_table(result: InferenceResult, probabilities: np.ndarray) -> Table:
    table = Table(title=f"Predictions ({result.backend.value}, {result.seconds * 1000:.0f} ms), "
                        "seen by the consumer only")
    for column in ("row", "P(class 1)", "predicted"):
        table.add_column(column, justify="right")
    for row, probability in enumerate(probabilities, start=1):
        table.add_row(str(row), f"{probability:.4f}", str(int(probability >= 0.5)))
    return table
