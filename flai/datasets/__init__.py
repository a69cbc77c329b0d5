"""The registered data sets and how demos split them into providers' partitions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

import pandas as pd

from flai.datasets import census, heart
from flai.datasets.partition import dirichlet_split, natural_split
from flai.datasets.policy import DisclosurePolicy, Release
from flai.datasets.schema import Categorical, Numeric, TabularSchema

__all__ = [
    "Categorical",
    "Dataset",
    "DisclosurePolicy",
    "Numeric",
    "Partitioning",
    "Release",
    "TabularSchema",
    "federation_name",
    "partition_path",
    "write_partitions",
]


class Dataset(Enum):
    """Data sets that ship inside packages, usable offline."""

    HEART = "heart"
    CENSUS = "census"

    @property
    def schema(self) -> TabularSchema:
        return _SCHEMAS[self]

    @property
    def policy(self) -> DisclosurePolicy:
        """The owners' disclosure policy, registered with the data set."""
        return _POLICIES[self]

    def load(self) -> pd.DataFrame:
        return _LOADERS[self]()


_SCHEMAS = {Dataset.HEART: heart.SCHEMA, Dataset.CENSUS: census.SCHEMA}
_POLICIES = {Dataset.HEART: heart.POLICY, Dataset.CENSUS: census.POLICY}
_LOADERS: dict[Dataset, Callable[[], pd.DataFrame]] = {
    Dataset.HEART: heart.load,
    Dataset.CENSUS: census.load,
}


@dataclass(frozen=True)
class Partitioning:
    """How a pooled data set becomes providers: by its natural site, or Dirichlet label skew."""

    providers: int | None = None  # None: one provider per natural site
    alpha: float = 0.5
    seed: int = 0


def split(dataset: Dataset, frame: pd.DataFrame, how: Partitioning) -> dict[str, pd.DataFrame]:
    if how.providers is None:
        if dataset is not Dataset.HEART:
            raise ValueError(f"{dataset.value} has no natural split; give a provider count")
        return natural_split(frame, heart.SITE_COLUMN)
    frame = frame.drop(columns=[heart.SITE_COLUMN], errors="ignore")
    return dirichlet_split(frame, dataset.schema.label, how.providers, how.alpha, how.seed)


def partition_path(data_dir: Path, provider: str, table: str) -> Path:
    """Where provider ``provider`` keeps its table: one directory per provider."""
    return data_dir / "providers" / provider / f"{table}.parquet"


def write_partitions(dataset: Dataset, data_dir: Path, how: Partitioning) -> dict[str, Path]:
    """Each provider's partition as Parquet under ``data_dir``; provider name -> file.

    Only a missing file, or one holding other rows, is written, and atomically (a provider
    reading its file never sees it half-written), so calling this again is cheap and safe.
    """
    paths = {}
    for provider, part in split(dataset, dataset.load(), how).items():
        path = paths[provider] = partition_path(data_dir, provider, dataset.schema.name)
        if path.is_file() and pd.read_parquet(path).equals(part):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        part.to_parquet(staging, index=False)
        os.replace(staging, path)
    return paths


def federation_name(dataset: Dataset, how: Partitioning, providers: int) -> str:
    """``heart-4`` for natural sites; a Dirichlet split names its parameters, because the
    providers of another split must not be reached under the same actor names.

    >>> federation_name(Dataset.CENSUS, Partitioning(4, 0.5, 0), 4)
    'census-4-a0.5-s0'
    """
    if how.providers is None:
        return f"{dataset.value}-{providers}"
    return f"{dataset.value}-{providers}-a{how.alpha:g}-s{how.seed}"
