"""Private inference, coordinated: the paid model, the parties, the request, its payment.

The coordinator learns the request's metadata only: the model's public shape, the number of
rows, the back-end and the time. Under MPC it opens the holder's session and starts both
halves; under HE it hands the consumer's query to the holder and the answer back as Ray
object references, so ciphertexts pass actor to actor, never through here.

The payment steps are retry-safe: the escrow is keyed (a retried request escrows nothing
more), a request ends once (a second release or refund returns its state and pays nothing),
and the lineage record is idempotent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from prefect import task
from prefect.cache_policies import NO_CACHE
from ray.actor import ActorHandle

from actors.reports import OpenedSession, SessionBusy
from contracts import LedgerBudgetExceededError, LedgerTransactionFailedError, TaskState, keccak_id
from contracts.market import InferenceRequest, Market, RequestState
from flai.inference import Backend, ModelRef
from flai.inference.mpc import MpcPlan
from flai.mpc.session import wait_listening
from flai.settings import get_settings
from flai.storage import StorageDaemonError
from tasks.chain import ledger
from tasks.publish import content_store


@dataclass(frozen=True)
class InferenceReceipt:
    """What a coordinator may know about a request: which model, how, how many rows, how long."""

    model_id: str
    backend: Backend
    rows: int
    seconds: float


def _holder_busy(task, task_run, state) -> bool:
    """Retry only when another request held the holder's session."""
    return isinstance(state.data, SessionBusy)


# Never cached: a receipt stands for one request actually served.
@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=1, retry_condition_fn=_holder_busy)
def private_predict(model: ModelRef, backend: Backend, holder: ActorHandle,
                    consumer: ActorHandle, dealer: ActorHandle) -> InferenceReceipt:
    """Serve one request of ``consumer``'s rows on ``model``; the consumer keeps the predictions.

    ``dealer`` deals the MPC session's triples for as long as the holder keeps it: it must
    not be serving another kept session (a federation's dealer serves its aggregator's)."""
    started = time.perf_counter()
    architecture = ray.get(holder.architecture.remote(model))
    backend.require(architecture.kind)
    if backend is Backend.HE:
        rows = ray.get(consumer.he_answered.remote(
            holder.evaluate_he.remote(model, consumer.he_query.remote())))
    else:
        plan = MpcPlan(architecture, ray.get(consumer.batch_size.remote()))
        rows = _run_mpc(model, plan, holder, consumer, dealer)
    return InferenceReceipt(model.model_id, backend, rows, time.perf_counter() - started)


def _run_mpc(model: ModelRef, plan: MpcPlan, holder: ActorHandle, consumer: ActorHandle,
             dealer: ActorHandle) -> int:
    """One request over the holder's session; the session is kept only if both parties
    returned (a failed one is formed anew by the next request)."""
    name = ray.get(consumer.ping.remote())
    opened: OpenedSession = ray.get(holder.open_session.remote(name))
    session, clean = opened.session, False
    try:
        served = holder.serve_mpc.remote(session, model, plan)
        if opened.formed:
            dealer.deal.remote(session)  # serves until the holder leaves the session
            wait_listening(session)  # the holder listens before the consumer dials in
        rows, _ = ray.get([consumer.predict_mpc.remote(session, plan), served],
                          timeout=4 * get_settings().mpc_timeout_s)
        clean = True
        return rows
    finally:
        ended = holder.request_ended.remote(session.session_id, clean)
        if clean:  # the holder answered: wait, so the next request finds its session free
            ray.get(ended)


# -- the parties ----------------------------------------------------------------------------

INFERENCE_DEALER = "inference/dealer"


@dataclass(frozen=True)
class Parties:
    holder: ActorHandle
    consumer: ActorHandle
    dealer: ActorHandle  # never the federations' dealer: that one serves their aggregators


def start_parties(consumer: str, rows_csv: Path) -> Parties:
    """The model holder, ``consumer``'s party with its rows loaded (from its own file, in its
    actor), and the inference dealer; each started once and kept, detached."""
    from actors.consumer import ConsumerActor
    from actors.dealer import DealerActor
    from actors.federation import connect
    from actors.model_holder import MODEL_HOLDER, ModelHolderActor

    connect()
    kept = {"get_if_exists": True, "lifetime": "detached"}
    holder = ModelHolderActor.options(name=MODEL_HOLDER, **kept).remote()
    dealer = DealerActor.options(name=INFERENCE_DEALER, **kept).remote()
    party = ConsumerActor.options(name=f"consumer/{consumer}", **kept).remote(consumer, rows_csv)
    ray.get(party.load_rows.remote(rows_csv))
    return Parties(holder, party, dealer)


def consumer_predictions(consumer: str):
    """The last predictions of ``consumer``'s party: for the consumer's own side only."""
    return ray.get(ray.get_actor(f"consumer/{consumer}").predictions.remote())


# -- the paid model and its request ---------------------------------------------------------


def _transient(task, task_run, state) -> bool:
    """Retry when the node or the store was briefly unavailable; every step is idempotent."""
    return isinstance(state.data, (OSError, LedgerTransactionFailedError, StorageDaemonError))


class ModelNotForSaleError(RuntimeError):
    """Only a model its DAO accepted (and whose task was settled) is sold."""


class InferenceBudgetExceededError(RuntimeError):
    """The consumer's rows on this model would pass the model's row budget, which its owners
    set on chain (the market refuses the request; nothing is escrowed)."""


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def locate_model(task_name: str) -> ModelRef:
    """The accepted model of ``task_name``: its last round's sealed model, as recorded."""
    from tasks.governance import governed_task

    found = governed_task(task_name)
    if found.state not in (TaskState.ACCEPTED, TaskState.SETTLED):
        raise ModelNotForSaleError(f"task {task_name!r} is {found.state.name.lower()}: only a "
                                   "model its DAO accepted is offered for inference")
    chain = ledger()
    last = chain.get_round(found.task_id, chain.round_count(found.task_id) - 1)
    return ModelRef(task_name, last.round + 1, last.model_cid, last.model_sha256.hex())


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def escrow_payment(consumer: str, task_name: str, batch: int, max_price: int | None,
                   key: str) -> InferenceRequest:
    """The consumer escrows the quoted price (at most ``max_price``) under ``key``: a retry
    finds the request made and escrows nothing more."""
    from tasks.settlement import funded_signer

    market = Market(funded_signer(consumer))
    model = keccak_id(task_name)
    price = market.quote(model, batch)
    deadline = ledger().chain.web3.eth.get_block("latest")["timestamp"] + get_settings().inference_deadline_s
    try:
        request = market.request(model, batch, price if max_price is None else max_price, deadline,
                                 key=keccak_id(key))
    except LedgerBudgetExceededError as refused:
        served = refused.arguments["requested"] - batch
        raise InferenceBudgetExceededError(
            f"{consumer} had {served} row(s) predicted by {task_name}; {batch} more would pass the "
            f"{refused.arguments['budget']} its owners let one consumer have, which bounds how much "
            "of the model its answers reveal") from None
    return market.get_request(request)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def release_payment(request: InferenceRequest) -> RequestState:
    """Pay the model's contributors (and the protocol fee) from the escrow: once."""
    return Market(ledger()).release(request.request_id)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def refund_payment(request: InferenceRequest) -> RequestState:
    """Give the consumer its escrow back (the request failed or timed out): once."""
    return Market(ledger()).refund(request.request_id)


INFERENCE_KIND = "flai.inference/1"


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def record_inference(request: InferenceRequest, model: ModelRef, backend: Backend,
                     state: RequestState) -> str:
    """The request's lineage: its id, the model's CID, the price, the batch size, the
    back-end and how it ended; never inputs or outputs. Idempotent."""
    document = {"format": INFERENCE_KIND, "request": "0x" + request.request_id.hex(),
                "model": model.model_id, "model_cid": model.cid, "price": str(request.price),
                "batch": request.batch, "backend": backend.value, "ended": state.name.lower()}
    store, chain = content_store(), ledger()
    cid = store.put(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    store.pin(cid)
    chain.register_task(keccak_id(f"inference/0x{request.request_id.hex()}"), chain.sender, cid,
                        INFERENCE_KIND)
    return cid
