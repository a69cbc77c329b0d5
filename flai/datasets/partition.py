"""Splitting a pooled data set into providers' partitions, for demos and experiments.

Real deployments skip this: each provider already holds its own file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def natural_split(frame: pd.DataFrame, site_column: str) -> dict[str, pd.DataFrame]:
    """One partition per value of ``site_column`` (e.g. the hospital), that column dropped.

    >>> frame = pd.DataFrame({"site": ["a", "b", "a"], "x": [1, 2, 3]})
    >>> {name: len(part) for name, part in natural_split(frame, "site").items()}
    {'a': 2, 'b': 1}
    """
    return {
        _slug(str(site)): part.drop(columns=site_column).reset_index(drop=True)
        for site, part in frame.groupby(site_column, sort=True)
    }


def dirichlet_split(
    frame: pd.DataFrame, label: str, providers: int, alpha: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Label-skewed partitions: each class is spread over providers by a Dirichlet(alpha) draw.

    Small ``alpha`` gives each provider few classes; large ``alpha`` approaches an IID split.
    Every provider receives at least one row of each class so none is empty.

    >>> frame = pd.DataFrame({"y": [0] * 90 + [1] * 10, "x": range(100)})
    >>> parts = dirichlet_split(frame, "y", providers=3, alpha=0.5, seed=0)
    >>> sorted(parts), sum(len(p) for p in parts.values())
    (['provider-0', 'provider-1', 'provider-2'], 100)
    """
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(frame), dtype=np.int64)
    for value in np.unique(frame[label].to_numpy()):
        rows = rng.permutation(np.flatnonzero(frame[label].to_numpy() == value))
        shares = rng.dirichlet(np.full(providers, alpha))
        # One row each first, the rest by the Dirichlet shares.
        counts = np.ones(providers, dtype=np.int64)
        counts += np.floor(shares * (len(rows) - providers)).astype(np.int64)
        counts[np.argmax(shares)] += len(rows) - counts.sum()
        assignment[rows] = np.repeat(np.arange(providers), counts)
    return {
        f"provider-{index}": frame[assignment == index].reset_index(drop=True)
        for index in range(providers)
    }


def _slug(text: str) -> str:
    return "-".join(text.lower().split())


def holdout_split(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A provider's (train, holdout) split: seeded, so a restarted provider gets the same one.

    >>> train, holdout = holdout_split(pd.DataFrame({"x": range(10)}), 0.2, seed=0)
    >>> len(train), len(holdout), sorted([*train.x, *holdout.x]) == list(range(10))
    (8, 2, True)
    """
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = round(len(frame) * fraction)
    return (frame.iloc[order[cut:]].reset_index(drop=True),
            frame.iloc[order[:cut]].reset_index(drop=True))
