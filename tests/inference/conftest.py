"""Real parties on the session's one Ray: a model holder over a sealed model in the content
store, consumers over CSV files of encoded heart rows, and a dealer of their own."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import ray
from ray.actor import ActorHandle

from actors.consumer import Consumer
from actors.dealer import Dealer
from actors.model_holder import ModelHolder
from flai import crypto
from flai.crypto import KeyStore
from flai.datasets.heart import SCHEMA, load
from flai.inference import ModelRef, ModelWeights
from flai.learning.features import encode
from flai.learning.models import ModelKind, to_vector
from flai.lineage import model_context
from flai.settings import get_settings
from flai.storage import open_store
from tasks.publish import model_bytes

BATCHES = (1, 100)
_serial = itertools.count()


@pytest.fixture(scope="session")
def heart_rows() -> np.ndarray:
    """Encoded heart features (38 columns in [0, 1]) of the first 100 patients."""
    features, _ = encode(load().head(max(BATCHES)), SCHEMA)
    return features.numpy().astype(np.float64)


@dataclass(frozen=True)
class Published:
    ref: ModelRef
    weights: ModelWeights  # the reference's copy, opened from the same bytes


@pytest.fixture(scope="session")
def published(heart_rows) -> dict[ModelKind, Published]:
    """One sealed model per kind, as a round publishes it; weights of the real modules,
    scaled so that the logits spread over several units."""
    settings = get_settings()
    models = {}
    for kind in ModelKind:
        task_id = f"inference-{kind.value}"
        vector = to_vector(kind.build(heart_rows.shape[1], 7)) * 4
        data = model_bytes(task_id, 1, kind, heart_rows.shape[1], vector)
        key = KeyStore.for_data_dir(settings.data_dir).load_or_create(task_id)
        record = crypto.publish_model(open_store(settings), data, key, model_context(task_id, 1))
        models[kind] = Published(ModelRef(task_id, 1, record.cid, record.sha256),
                                 ModelWeights.from_model_bytes(data))
    return models


@pytest.fixture(scope="session")
def rows_files(heart_rows, tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("consumer-rows")
    files = {}
    for batch in BATCHES:
        files[batch] = folder / f"rows-{batch}.csv"
        np.savetxt(files[batch], heart_rows[:batch], delimiter=",", fmt="%.17g")
    return files


@dataclass(frozen=True)
class Parties:
    holder: ActorHandle
    dealer: ActorHandle
    consumers: dict[int, ActorHandle]  # by batch size


@pytest.fixture(scope="session")
def start_parties(ray_cluster, rows_files) -> Iterator[Callable[..., Parties]]:
    """Start a holder, its own dealer (a dealer serves one kept session at a time) and one
    consumer per batch size, from the given classes; all stopped at the end."""
    started: list[ActorHandle] = []

    def start(holder_class: type = ModelHolder, consumer_class: type = Consumer) -> Parties:
        serial = next(_serial)
        holder = ray.remote(num_cpus=0, max_concurrency=2)(holder_class).remote(f"holder-{serial}")
        dealer = ray.remote(num_cpus=0, max_concurrency=2)(Dealer).remote()
        consumers = {batch: ray.remote(num_cpus=0)(consumer_class).remote(
            f"consumer-{serial}-{batch}", path) for batch, path in rows_files.items()}
        started.extend([holder, dealer, *consumers.values()])
        ray.get([holder.ping.remote(), dealer.ping.remote(),
                 *(c.ping.remote() for c in consumers.values())])
        return Parties(holder, dealer, consumers)

    yield start
    for actor in started:
        ray.kill(actor)


@pytest.fixture(scope="session")
def parties(start_parties) -> Parties:
    return start_parties()
