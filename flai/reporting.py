"""What an operator sees of a training job in the Prefect UI: artifacts on its flow run.

Every FL round attaches a table (one row per provider: in the model or not, why it was
dropped, its quality verdict) whose description carries the round's metrics, model CID,
transaction and one line per dropout. The rounds' tables share one key, so the artifacts page
lists a job once with its rounds as versions, and the training run's page shows every round
(Prefect keeps each version on the run it was created in). A training job attaches its
training curve as a markdown artifact: the PNG is embedded as a ``data:image/png`` URI, which
both Prefect 3.9 UIs render inline (the v2 UI's markdown sanitiser allows ``data:image/``
sources, the v1 renderer passes them through; an image artifact would also print the whole URI
as text), next to the PNG's file path under the data directory and its CID in the content store.

Only what the round revealed anyway is shown: aggregate metrics, names, verdicts, hashes.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402

from flai.quality import QualityReport  # noqa: E402
from flai.storage import ContentStore  # noqa: E402

if TYPE_CHECKING:
    from flai.learning.metrics import Metrics

__all__ = ["CurvePoint", "PublishedCurve", "artifact_key", "dropout_lines", "report_round",
           "report_training", "training_curve_png"]


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes only) from free text.

    >>> artifact_key("fl-round", "Heart_4.logreg-s0")
    'fl-round-heart-4-logreg-s0'
    """
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def report_round(task_id: str, round_number: int, participants: Sequence[str],
                 dropped: Mapping[str, str], quality: Mapping[str, QualityReport],
                 train_loss: float, metrics: Metrics, model_cid: str, tx_hash: str,
                 block_number: int, values: Mapping[str, float] | None = None) -> UUID:
    """Attach the round's table artifact to the current run (key ``fl-round-<task>``, a new
    version of it each round); ``values``, when the round was valued, get a column."""
    rows = []
    for name in sorted({*participants, *dropped, *quality}):
        report = quality.get(name)
        row = {
            "provider": name,
            "in model": "yes" if name in participants else "no",
            "dropped because": dropped.get(name, ""),
            "quality gate": "not checked" if report is None else ("passed" if report.passed else "failed"),
            "rows checked": "" if report is None else report.rows,
            "expectations": "" if report is None else report.evaluated,
        }
        if values:
            row["value"] = "" if name not in values else round(values[name], 6)
        rows.append(row)
    description = (
        f"**Round {round_number}** of `{task_id}`: {len(participants)} participant(s); "
        f"federated accuracy {metrics.accuracy:.4f}, balanced accuracy "
        f"{metrics.balanced_accuracy:.4f}, AUC {metrics.auc:.4f}, log loss {metrics.loss:.4f}, "
        f"train loss {train_loss:.4f}.\n\nModel CID `{model_cid}`; recorded in tx `{tx_hash}` "
        f"(block {block_number}).{dropout_lines(dropped)}")
    return create_table_artifact(rows, key=artifact_key("fl-round", task_id), description=description)


def dropout_lines(dropped: Mapping[str, str]) -> str:
    """Who left the round and why, one line each, for the round's description.

    >>> print(dropout_lines({"hungary": "died during secure aggregation (session 1 of round 3)"}))
    <BLANKLINE>
    <BLANKLINE>
    Dropped:
    - hungary: died during secure aggregation (session 1 of round 3)
    >>> dropout_lines({})
    ''
    """
    if not dropped:
        return ""
    return "\n\nDropped:\n" + "\n".join(f"- {name}: {why}" for name, why in sorted(dropped.items()))


@dataclass(frozen=True)
class CurvePoint:
    round_number: int
    train_loss: float
    metrics: Metrics


@dataclass(frozen=True)
class PublishedCurve:
    path: Path
    cid: str
    artifact_id: UUID


def training_curve_png(task_id: str, points: Sequence[CurvePoint]) -> bytes:
    """A PNG of accuracy, balanced accuracy and AUC (left) and losses (right) per round.

    >>> from flai.learning.metrics import Metrics
    >>> point = CurvePoint(1, 0.6, Metrics(10, 0.8, 0.75, 0.85, 0.5))
    >>> training_curve_png("t", [point]).startswith(b"\\x89PNG")
    True
    """
    rounds = [p.round_number for p in points]
    figure, (quality, loss) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=100)
    try:
        for label, values in (("accuracy", [p.metrics.accuracy for p in points]),
                              ("balanced accuracy", [p.metrics.balanced_accuracy for p in points]),
                              ("AUC", [p.metrics.auc for p in points])):
            quality.plot(rounds, values, marker="o", label=label)
        loss.plot(rounds, [p.metrics.loss for p in points], marker="o", label="federated log loss")
        loss.plot(rounds, [p.train_loss for p in points], marker="o", label="train loss")
        for axes, title in ((quality, "model quality"), (loss, "loss")):
            axes.set_xlabel("round")
            axes.set_xticks(rounds)
            axes.set_title(title)
            axes.grid(alpha=0.3)
            axes.legend(fontsize="small")
        figure.suptitle(task_id)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()


def report_training(task_id: str, points: Sequence[CurvePoint], data_dir: Path,
                    store: ContentStore) -> PublishedCurve:
    """Write the curve to ``<data_dir>/reports/<task>/training-curve.png``, store and pin it,
    and attach it to the current run (key ``training-curve-<task>``)."""
    png = training_curve_png(task_id, points)
    path = Path(data_dir) / "reports" / task_id / "training-curve.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    cid = store.put(png)
    store.pin(cid)
    markdown = (
        f"# Training curve of `{task_id}`\n\n"
        f"![training curve](data:image/png;base64,{base64.b64encode(png).decode()})\n\n"
        f"File: `{path}`  \nContent store CID: `{cid}`\n")
    artifact_id = create_markdown_artifact(markdown, key=artifact_key("training-curve", task_id),
                                           description=f"{len(points)} round(s) of {task_id}")
    return PublishedCurve(path, cid, artifact_id)
