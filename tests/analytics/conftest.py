"""Real partitions for federated SQL: TPC-H at SF 0.01 over 4 providers, heart by hospital."""

from __future__ import annotations

from pathlib import Path

import pytest
from tpch_data import generate

from flai.datasets import Dataset, Partitioning, write_partitions


@pytest.fixture(scope="session")
def tpch_files(tmp_path_factory) -> dict[str, list[Path]]:
    return generate(tmp_path_factory.mktemp("tpch"), 0.01)


@pytest.fixture(scope="session")
def heart_files(tmp_path_factory) -> list[Path]:
    return list(write_partitions(Dataset.HEART, tmp_path_factory.mktemp("heart"),
                                 Partitioning()).values())
