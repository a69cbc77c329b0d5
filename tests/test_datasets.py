"""Providers' partitions: laid out once per split, never overwritten, never half-written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from flai.datasets import (
    Dataset,
    PartitionConflict,
    Partitioning,
    split_partitions,
    write_partitions,
)


def test_partitions_are_written_once_and_an_existing_file_is_never_rewritten(tmp_path: Path) -> None:
    files = write_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert sorted(files) == ["cleveland", "hungary", "switzerland", "va-long-beach"]
    assert sum(len(pd.read_parquet(path)) for path in files.values()) == 920
    written_at = {name: path.stat().st_mtime_ns for name, path in files.items()}

    assert write_partitions(Dataset.HEART, tmp_path, Partitioning()) == files
    assert {name: path.stat().st_mtime_ns for name, path in files.items()} == written_at

    edited = pd.read_parquet(files["hungary"]).iloc[:10]
    edited.to_parquet(files["hungary"], index=False)  # the provider edited its own file
    files["cleveland"].write_bytes(b"not parquet")  # or it is corrupt
    files["switzerland"].unlink()
    write_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert pd.read_parquet(files["hungary"]).equals(edited)
    assert files["cleveland"].read_bytes() == b"not parquet"
    assert files["switzerland"].is_file()
    assert not list(tmp_path.rglob("*.tmp"))

    with pytest.raises(PartitionConflict) as refused:
        split_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert set(refused.value.paths) == {files["hungary"], files["cleveland"]}
    assert pd.read_parquet(files["hungary"]).equals(edited)


def test_two_splits_never_share_a_file(tmp_path: Path) -> None:
    one = write_partitions(Dataset.HEART, tmp_path, Partitioning(2, 0.5, 0))
    other = write_partitions(Dataset.HEART, tmp_path, Partitioning(2, 0.5, 1))
    assert sorted(one) == sorted(other) and not set(one.values()) & set(other.values())
    assert all("heart-2-a0.5-s0" in str(path) for path in one.values())


def test_flai_data_split_refuses_to_overwrite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLAI_DATA_DIR", str(tmp_path))
    from flai.settings import get_settings
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["data", "split"])
        assert first.exit_code == 0, first.output
        (path,) = tmp_path.rglob("hungary/heart.parquet")
        path.write_bytes(b"edited")
        refused = CliRunner().invoke(app, ["data", "split"])
        assert refused.exit_code == 2 and "left as they are" in refused.output
        assert path.read_bytes() == b"edited"
    finally:
        get_settings.cache_clear()
