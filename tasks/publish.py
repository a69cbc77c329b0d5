"""Publish a round's global model: serialise, seal under the task's key, store and pin.

The key is the task owner's (``flai.crypto.KeyStore`` under ``<data_dir>/keys``), loaded
here where it is used and never passed as a flow parameter; only the envelope's CID and the
plaintext's SHA-256 leave this step.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from flai import crypto
from flai.crypto import KeyStore, PublishedModel
from flai.learning.models import ModelKind, to_vector
from flai.lineage import model_context
from flai.settings import Settings, get_settings
from flai.storage import ContentStore, StorageDaemonError, open_store

MODEL_FORMAT = "flai-model/1"


def model_bytes(task_id: str, round_number: int, kind: ModelKind, features: int,
                vector: torch.Tensor) -> bytes:
    """The global model as ``torch.save`` bytes: identical inputs give identical bytes.

    A dict of the format tag, task, round, model kind, input feature count and the float64
    ``state_dict`` (the aggregate exactly as computed, no float32 rounding). Load it with
    ``torch.load(..., weights_only=True)`` and ``kind.build(features, 0).double()``.

    >>> vector = torch.arange(3, dtype=torch.float64)
    >>> first = model_bytes("t", 1, ModelKind.LOGREG, 2, vector)
    >>> first == model_bytes("t", 1, ModelKind.LOGREG, 2, vector)
    True
    >>> saved = torch.load(io.BytesIO(first), weights_only=True)
    >>> saved["kind"], saved["features"], saved["state_dict"]["bias"].tolist()
    ('logreg', 2, [2.0])
    """
    model = kind.build(features, 0).to(torch.float64)
    torch.nn.utils.vector_to_parameters(vector.to(torch.float64), model.parameters())
    buffer = io.BytesIO()
    torch.save({"format": MODEL_FORMAT, "task": task_id, "round": round_number, "kind": kind.value,
                "features": features, "state_dict": model.state_dict()}, buffer)
    return buffer.getvalue()


def model_vector(data: bytes, kind: ModelKind, features: int) -> torch.Tensor:
    """The float64 parameter vector of a model saved by :func:`model_bytes`: its inverse.

    >>> vector = torch.arange(3, dtype=torch.float64) / 7
    >>> model_vector(model_bytes("t", 1, ModelKind.LOGREG, 2, vector), ModelKind.LOGREG, 2).equal(vector)
    True
    """
    saved = torch.load(io.BytesIO(data), weights_only=True)
    model = kind.build(features, 0).to(torch.float64)
    model.load_state_dict(saved["state_dict"])
    return to_vector(model)


def content_store() -> ContentStore:
    """The configured store (``settings.ipfs_api``), one per process and configuration."""
    settings = get_settings()
    return _content_store(settings.data_dir, settings.ipfs_api)


@cache
def _content_store(data_dir: Path, ipfs_api: str | None) -> ContentStore:
    return open_store(Settings(data_dir=data_dir, ipfs_api=ipfs_api))


def _store_unavailable(task, task_run, state) -> bool:
    """Retry only when the IPFS daemon failed; a bad key or model fails the same way again."""
    return isinstance(state.data, StorageDaemonError)


# Sealing is deterministic (flai.crypto): a retry after a completed put, or a resumed job
# publishing a round again, stores the same envelope under the same CID.
@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
      retry_condition_fn=_store_unavailable)
def publish_global_model(task_id: str, round_number: int, kind: ModelKind, features: int,
                         vector: torch.Tensor) -> PublishedModel:
    key = KeyStore.for_data_dir(get_settings().data_dir).load_or_create(task_id)
    return crypto.publish_model(content_store(),
                                model_bytes(task_id, round_number, kind, features, vector), key,
                                model_context(task_id, round_number))
