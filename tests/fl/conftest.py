"""Federations over real provider actors, on real partitions written from packaged data."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import federation as fed
from flai.datasets import Dataset, Partitioning, write_partitions

_serial = itertools.count()


@pytest.fixture(scope="session")
def heart_files(data_dir: Path) -> dict[str, Path]:
    return write_partitions(Dataset.HEART, data_dir, Partitioning())


@pytest.fixture
def heart_federation(ray_cluster, heart_files) -> Iterator[fed.Federation]:
    """The four hospitals as a fresh federation of live actors, stopped after the test."""
    federation = fed.Federation(f"test-heart-{next(_serial)}", Dataset.HEART, tuple(heart_files),
                                "heart-4")
    fed.start(federation)
    yield federation
    fed.stop(federation)
