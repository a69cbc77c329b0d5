"""Decoded private predictions equal plaintext inference within the stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from flai.inference import TOLERANCE, Backend, BackendUnsupported, plaintext_predict
from flai.learning.models import ModelKind
from tasks.inference import InferenceReceipt, private_predict

SERVED = [(Backend.MPC, ModelKind.LOGREG), (Backend.MPC, ModelKind.MLP),
          (Backend.HE, ModelKind.LOGREG)]


@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize(("backend", "kind"), SERVED, ids=lambda v: v.value)
def test_private_predictions_equal_plaintext(parties, published, heart_rows, backend, kind, batch):
    model, consumer = published[kind], parties.consumers[batch]

    receipt = private_predict.fn(model.ref, backend, parties.holder, consumer, parties.dealer)

    assert receipt == InferenceReceipt(model.ref.model_id, backend, batch, receipt.seconds)
    predicted = ray.get(consumer.predictions.remote())
    expected = plaintext_predict(model.weights, heart_rows[:batch])
    assert predicted.shape == (batch,)
    assert np.abs(predicted - expected).max() < TOLERANCE
    assert expected.std() > 0.05 or batch == 1  # the predictions are far from one constant


def test_a_kept_session_serves_the_next_request_of_the_same_consumer(parties, published):
    model, consumer = published[ModelKind.LOGREG], parties.consumers[1]
    name = ray.get(consumer.ping.remote())
    private_predict.fn(model.ref, Backend.MPC, parties.holder, consumer, parties.dealer)
    first = ray.get(parties.holder.open_session.remote(name))
    ray.get(parties.holder.request_ended.remote(first.session.session_id, True))

    again = ray.get(parties.holder.open_session.remote(name))
    ray.get(parties.holder.request_ended.remote(again.session.session_id, True))

    assert not first.formed and not again.formed
    assert again.session == first.session


def test_he_refuses_the_mlp_clearly(parties, published):
    with pytest.raises(BackendUnsupported, match="use the mpc back-end"):
        private_predict.fn(published[ModelKind.MLP].ref, Backend.HE, parties.holder,
                           parties.consumers[1], parties.dealer)
