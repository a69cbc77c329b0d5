"""Providers' partitions: written once, rewritten only when they differ, never half-written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flai.datasets import Dataset, Partitioning, write_partitions


def test_partitions_are_written_once_and_rewritten_only_when_they_differ(tmp_path: Path) -> None:
    files = write_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert sorted(files) == ["cleveland", "hungary", "switzerland", "va-long-beach"]
    assert sum(len(pd.read_parquet(path)) for path in files.values()) == 920
    written_at = {name: path.stat().st_mtime_ns for name, path in files.items()}

    assert write_partitions(Dataset.HEART, tmp_path, Partitioning()) == files
    assert {name: path.stat().st_mtime_ns for name, path in files.items()} == written_at

    hungary = pd.read_parquet(files["hungary"])
    hungary.iloc[:10].to_parquet(files["hungary"], index=False)  # a stale or truncated file
    files["switzerland"].unlink()
    write_partitions(Dataset.HEART, tmp_path, Partitioning())
    assert pd.read_parquet(files["hungary"]).equals(hungary)
    assert files["switzerland"].is_file()
    assert files["cleveland"].stat().st_mtime_ns == written_at["cleveland"]
    assert not list(tmp_path.rglob("*.tmp"))
