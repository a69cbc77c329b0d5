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
    "PartitionConflict",
    "Partitioning",
    "Release",
    "TabularSchema",
    "federation_name",
    "partitioning_for",
    "partition_path",
    "split_partitions",
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


def partitioning_for(dataset: Dataset, providers: int | None = None, alpha: float = 0.5,
                     seed: int = 0) -> Partitioning:
    """The demo split of ``dataset``: heart by its hospitals (``providers`` is ignored); census,
    which has no natural split, by a Dirichlet(``alpha``) label skew over ``providers`` (4 if
    not given). The one place the CLI, the deployments and ``federated_query`` choose it.

    >>> partitioning_for(Dataset.HEART, 8), partitioning_for(Dataset.CENSUS)
    (Partitioning(providers=None, alpha=0.5, seed=0), Partitioning(providers=4, alpha=0.5, seed=0))
    """
    if dataset is Dataset.HEART:
        return Partitioning(None, alpha, seed)
    return Partitioning(providers or 4, alpha, seed)


def split(dataset: Dataset, frame: pd.DataFrame, how: Partitioning) -> dict[str, pd.DataFrame]:
    if how.providers is None:
        if dataset is not Dataset.HEART:
            raise ValueError(f"{dataset.value} has no natural split; give a provider count")
        return natural_split(frame, heart.SITE_COLUMN)
    frame = frame.drop(columns=[heart.SITE_COLUMN], errors="ignore")
    return dirichlet_split(frame, dataset.schema.label, how.providers, how.alpha, how.seed)


def partition_path(data_dir: Path, split: str, provider: str, table: str) -> Path:
    """Where provider ``provider`` of split ``split`` keeps its table: one directory per split
    and provider, so the partitions of two splits never share a file.

    >>> partition_path(Path("/d"), "census-4-a0.5-s0", "provider-0", "census").as_posix()
    '/d/providers/census-4-a0.5-s0/provider-0/census.parquet'
    """
    return data_dir / "providers" / split / provider / f"{table}.parquet"


class PartitionConflict(RuntimeError):
    """Files of a split already hold other rows (or cannot be read); they are not overwritten."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        super().__init__(f"{len(paths)} partition file(s) exist with other content and were left "
                         f"as they are: {', '.join(str(p) for p in paths)}")
        self.paths = paths


def write_partitions(dataset: Dataset, data_dir: Path, how: Partitioning) -> dict[str, Path]:
    """Each provider's partition of a demo split as Parquet; provider name -> file.

    Only a missing file is written, atomically (a provider reading its file never sees it half
    written). A file that exists belongs to its provider: it is never read or rewritten here,
    so an edited or corrupt file stays as it is and its provider decides (a provider that
    cannot read its file sits rounds out). ``split_partitions`` checks existing files instead.
    """
    return _lay_out(dataset, data_dir, how)[0]


def split_partitions(dataset: Dataset, data_dir: Path, how: Partitioning) -> dict[str, Path]:
    """``write_partitions``, refusing when an existing file holds other rows than the split
    would write (``PartitionConflict``, nothing overwritten): ``flai data split``."""
    paths, parts = _lay_out(dataset, data_dir, how)
    conflicts = tuple(path for provider, path in paths.items() if not _holds(path, parts[provider]))
    if conflicts:
        raise PartitionConflict(conflicts)
    return paths


def _lay_out(dataset: Dataset, data_dir: Path,
             how: Partitioning) -> tuple[dict[str, Path], dict[str, pd.DataFrame]]:
    parts = split(dataset, dataset.load(), how)
    name = federation_name(dataset, how, len(parts))
    paths = {provider: partition_path(data_dir, name, provider, dataset.schema.name)
             for provider in parts}
    for provider, part in parts.items():
        if not paths[provider].exists():
            _write(paths[provider], part)
    return paths, parts


def _holds(path: Path, part: pd.DataFrame) -> bool:
    try:
        return pd.read_parquet(path).equals(part)
    except Exception:  # noqa: BLE001 - unreadable is as good as different here
        return False


def _write(path: Path, part: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    part.to_parquet(staging, index=False)
    os.replace(staging, path)


def federation_name(dataset: Dataset, how: Partitioning, providers: int) -> str:
    """``heart-4`` for natural sites; a Dirichlet split names its parameters, because the
    providers of another split must not be reached under the same actor names.

    >>> federation_name(Dataset.CENSUS, Partitioning(4, 0.5, 0), 4)
    'census-4-a0.5-s0'
    """
    if how.providers is None:
        return f"{dataset.value}-{providers}"
    return f"{dataset.value}-{providers}-a{how.alpha:g}-s{how.seed}"
