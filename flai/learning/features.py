"""Turning a provider's rows into model inputs using only the public schema.

Every provider encodes identically without seeing anyone else's data: numerics are scaled by
their declared bounds (``log1p`` first where declared), categoricals one-hot over their
declared domain, and a missing value becomes zero plus a per-column missing indicator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from flai.datasets.schema import Categorical, Numeric, TabularSchema


def feature_count(schema: TabularSchema) -> int:
    return sum(_width(column) for column in schema.features)


def encode(frame: pd.DataFrame, schema: TabularSchema) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``X`` (float32, ``n x feature_count``) and labels ``y`` (float32, 0/1).

    >>> from flai.datasets.heart import SCHEMA, load
    >>> X, y = encode(load().head(3), SCHEMA)
    >>> tuple(X.shape), y.tolist()
    ((3, 38), [0.0, 1.0, 1.0])
    """
    labels = frame[schema.label].to_numpy(dtype=np.float32)
    return torch.from_numpy(encode_features(frame, schema)), torch.from_numpy(labels)


def encode_features(frame: pd.DataFrame, schema: TabularSchema) -> np.ndarray:
    """The features of ``frame``'s rows (float32, ``n x feature_count``); no label needed, as
    for a consumer's rows to predict. A feature column the frame lacks counts as missing.

    >>> from flai.datasets.heart import SCHEMA, load
    >>> encode_features(load().head(2).drop(columns=["chol"]), SCHEMA).shape
    (2, 38)
    """
    frame = frame.reindex(columns=[column.name for column in schema.features])
    blocks = [_encode_column(frame[column.name], column) for column in schema.features]
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _width(column: Numeric | Categorical) -> int:
    if isinstance(column, Numeric):
        return 2  # scaled value, missing indicator
    return len(column.domain) + 1  # one-hot, missing indicator


def _encode_column(values: pd.Series, column: Numeric | Categorical) -> np.ndarray:
    missing = values.isna().to_numpy()
    if isinstance(column, Numeric):
        raw = values.to_numpy(dtype=np.float64, na_value=np.nan)
        transform = np.log1p if column.log else (lambda x: x)
        low, high = transform(column.low), transform(column.high)
        clipped = np.clip(raw, column.low, column.high)
        scaled = np.where(missing, 0.0, (transform(clipped) - low) / (high - low))
        return np.stack([scaled, missing], axis=1)
    one_hot = np.stack([(values == level).to_numpy(dtype=bool, na_value=False)
                        for level in column.domain], axis=1)
    return np.concatenate([one_hot, missing[:, None]], axis=1)
