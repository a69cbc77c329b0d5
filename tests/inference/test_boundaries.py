"""What crosses each party's boundary: the holder receives shares or ciphertexts of the
rows, never the rows; the consumer receives no weights; the holder never learns the output.

The parties run with recording subclasses (``recording.py``): every argument of the calls
that carry a request and every message of their MPC mesh is inspected here.
"""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from flai.inference import Backend
from flai.inference.he import HeAnswer, HeQuery
from flai.inference.model import plaintext_logits
from flai.inference.mpc import CONSUMER, HOLDER, MpcPlan
from flai.learning.models import ModelKind
from flai.mpc.fixed_point import decode, encode
from flai.mpc.session import MpcSession
from flai.inference import ModelRef
from tasks.inference import private_predict
from tests.inference.recording import RecordingConsumer, RecordingHolder

BATCH = 100


@pytest.fixture(scope="module")
def recording(start_parties):
    return start_parties(RecordingHolder, RecordingConsumer)


def _fingerprints(matrix: np.ndarray) -> list[bytes]:
    """Byte strings that would betray ``matrix`` in a message: each row and column as
    float64, float32 and fixed-point ring elements."""
    prints = []
    for lines in (matrix, matrix.T):
        for line in np.ascontiguousarray(lines):
            prints += [line.tobytes(), line.astype(np.float32).tobytes(),
                       encode(torch.from_numpy(line.copy())).numpy().tobytes()]
    return prints


def _betrays(data: bytes, prints: list[bytes]) -> bool:
    return any(p in data for p in prints)


def _received(messages) -> list[bytes]:
    return [data for _, received in messages for data in received.values()]


@pytest.mark.parametrize("kind", list(ModelKind), ids=lambda k: k.value)
def test_mpc_holder_sees_only_shares_consumer_no_weights_and_holder_no_output(
        recording, published, heart_rows, kind):
    model, consumer, rows = published[kind], recording.consumers[BATCH], heart_rows[:BATCH]
    private_predict.fn(model.ref, Backend.MPC, recording.holder, consumer, recording.dealer)
    holder_calls, holder_messages = ray.get(recording.holder.recorded.remote())
    consumer_calls, consumer_messages = ray.get(consumer.recorded.remote())

    # The actors are called with metadata only: a session, the model's address, the plan.
    assert [(name, tuple(map(type, args))) for name, args in holder_calls] == [
        ("serve_mpc", (MpcSession, ModelRef, MpcPlan))]
    assert [(name, tuple(map(type, args))) for name, args in consumer_calls] == [
        ("predict_mpc", (MpcSession, MpcPlan))]

    # The holder received the consumer's openings (and the dealer's), none betraying a row.
    from_consumer = [r[CONSUMER] for _, r in holder_messages if CONSUMER in r]
    assert sum(map(len, from_consumer)) >= rows.nbytes
    assert not any(_betrays(data, _fingerprints(rows)) for data in _received(holder_messages))

    # The consumer received openings and the holder's output share, none betraying a weight.
    weight_prints = [p for layer in model.weights.layers for p in _fingerprints(layer.weight)]
    assert not any(_betrays(data, weight_prints) for data in _received(consumer_messages))

    # The output is revealed one way: the holder's last message is its share, to the consumer
    # alone, and that share alone decodes to noise, nowhere near the logits.
    sent, received = holder_messages[-1]
    assert set(sent) == {CONSUMER} and not received
    assert consumer_messages[-1] == ({}, {HOLDER: sent[CONSUMER]})
    share = decode(torch.from_numpy(np.frombuffer(sent[CONSUMER], dtype=np.int64).copy())).numpy()
    assert np.abs(share - plaintext_logits(model.weights, rows)).min() > 1e6


def test_he_holder_gets_a_public_context_and_ciphertexts_consumer_gets_ciphertexts(
        recording, published, heart_rows):
    import tenseal as ts

    model, consumer, rows = published[ModelKind.LOGREG], recording.consumers[BATCH], heart_rows[:BATCH]
    private_predict.fn(model.ref, Backend.HE, recording.holder, consumer, recording.dealer)
    (name, (ref, query)), = ray.get(recording.holder.recorded.remote())[0]
    (answered, (answer,)), = ray.get(consumer.recorded.remote())[0]

    assert (name, answered, ref) == ("evaluate_he", "he_answered", model.ref)
    assert type(query) is HeQuery and type(answer) is HeAnswer
    public = ts.context_from(query.public_context)
    assert not public.is_private()  # the holder holds no secret key
    assert not any(_betrays(c, _fingerprints(rows)) for c in query.ciphertexts)
    assert not any(_betrays(c, _fingerprints(model.weights.layers[0].weight))
                   for c in answer.ciphertexts)
    # What the holder computed, it cannot read: decryption needs the consumer's secret key.
    with pytest.raises(ValueError):
        ts.ckks_vector_from(public, answer.ciphertexts[0]).decrypt()
