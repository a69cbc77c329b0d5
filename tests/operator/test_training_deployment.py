"""The deployment entry point's own logic: partitions prepared once, JSON parameters typed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deployments.training import prepare_partitions, train
from flai.datasets import Dataset, Partitioning


def test_partitions_are_written_once_and_rewritten_only_when_they_differ(tmp_path: Path) -> None:
    files, written = prepare_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert sorted(files) == written == ["cleveland", "hungary", "switzerland", "va-long-beach"]
    assert sum(len(pd.read_parquet(path)) for path in files.values()) == 920
    _, written = prepare_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert written == []
    frame = pd.read_parquet(files["hungary"])
    frame.iloc[:10].to_parquet(files["hungary"], index=False)  # a stale or truncated file
    files["switzerland"].unlink()
    _, written = prepare_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert written == ["hungary", "switzerland"]
    assert pd.read_parquet(files["hungary"]).equals(frame)
    assert not list(tmp_path.rglob("*.tmp"))


def test_parameters_are_json_with_choices_and_bounds_for_the_ui() -> None:
    """What the UI's run form and the API validate against."""
    schema = train.parameters.model_dump()
    properties = schema["properties"]
    assert set(properties) == {"dataset", "rounds", "model", "providers", "alpha", "mu", "epochs",
                               "learning_rate", "target_accuracy", "seed"}
    assert properties["rounds"]["default"] == 5 and properties["rounds"]["minimum"] == 1
    definitions = schema["definitions"]
    assert definitions["Dataset"]["enum"] == ["heart", "census"]
    assert definitions["ModelKind"]["enum"] == ["logreg", "mlp"]
