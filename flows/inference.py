"""Paid private inference: a consumer pays per request in FLAI and alone learns the output.

The recipe: the accepted model, located on chain → its parties (the model holder opens the
sealed model with the task's key; the consumer's party holds its rows, read from its own
file; a dealer that is neither) → the price quoted on chain and escrowed by the consumer →
private inference (MPC or homomorphic encryption, ``flai.inference``) → the escrow released
to the model's contributors by their settled shares and the treasury's fee, or refunded when
inference fails or times out → lineage: request id, model CID, price, batch size, never
inputs or outputs.

The coordinator running this flow never holds a row, a weight or a prediction; the consumer
reads its predictions from its own party (:func:`tasks.inference.consumer_predictions`).
A retried run (the same flow run id) escrows, pays or refunds nothing twice: the escrow's key
is the run's id and a request ends once.

    from flows.inference import inference
    receipt = inference("heart-4-logreg-…", "clinic-7", "rows.csv", Backend.HE)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ray
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from contracts.market import RequestState
from flai.inference import Backend
from flai.settings import get_settings
from tasks.inference import (
    escrow_payment,
    locate_model,
    private_predict,
    record_inference,
    refund_payment,
    release_payment,
    start_parties,
)


class RequestEndedError(RuntimeError):
    """The run's request was paid for or refunded already; a new request needs a new run."""


@dataclass(frozen=True)
class InferenceResult:
    """What the request cost and how it ended; the predictions stay with the consumer."""

    request_id: str
    model: str
    model_cid: str
    backend: Backend
    batch: int
    price: int  # FLAI base units
    state: RequestState
    seconds: float  # private inference, from the coordinator's first call to the decoding
    lineage_cid: str


@flow(name="inference", flow_run_name="{model}-{backend}")
def inference(model: str, consumer: str, rows_csv: Path, backend: Backend = Backend.MPC,
              max_price: int | None = None) -> InferenceResult:
    """Serve one paid request of ``consumer``'s rows on the accepted model of task ``model``."""
    ref = locate_model(model)
    parties = start_parties(consumer, Path(rows_csv))
    batch = ray.get(parties.consumer.batch_size.remote())
    request = escrow_payment(consumer, model, batch, max_price, key=str(flow_run.id))
    if request.state is not RequestState.ESCROWED:  # a retried run whose request ended
        raise RequestEndedError(f"request 0x{request.request_id.hex()} was "
                                f"{request.state.name.lower()} already: it is not served again")
    served = private_predict.with_options(timeout_seconds=get_settings().inference_timeout_s)
    try:
        receipt = served(ref, backend, parties.holder, parties.consumer, parties.dealer)
    except Exception:
        # Failed or timed out: the consumer gets its escrow back, and the failure is recorded.
        state = refund_payment(request)
        record_inference(request, ref, backend, state)
        raise
    state = release_payment(request)
    lineage = record_inference(request, ref, backend, state)
    get_run_logger().info("request 0x%s on %s (%s, %d rows): %s, %.1f ms", request.request_id.hex(),
                          ref.model_id, backend.value, batch, state.name.lower(),
                          receipt.seconds * 1000)
    return InferenceResult("0x" + request.request_id.hex(), model, ref.cid, backend, batch,
                           request.price, state, receipt.seconds, lineage)
