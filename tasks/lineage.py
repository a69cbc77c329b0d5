"""Record a round's lineage on chain and in the owner's DuckDB mirror; read it back, verified.

On chain a task is ``keccak_id(task_id)`` (keccak-256 of its name) and its rounds count from 0,
so flow round ``n`` is chain round ``n - 1``. The task is registered by the lineage step of
every round (an identical registration is a no-op), with the CID of its public spec.

Retry-safe: recording identical content again changes nothing on chain, and the mirror keeps
the transaction that first recorded the round (looked up from the chain's ``RoundRecorded``
event), so a retried step leaves both as they were. Different content for a recorded round
raises :class:`LineageConflictError`: lineage is never rewritten.

Resumable: :func:`resume_point` reads how far a task got on chain and fetches, opens and
checks its last recorded model, so a retried or re-run job continues after that round.

The embedded chain lives in the process (``contracts.connect``), so the Ledger is opened once
per process and shared by every round and by ``flai lineage`` in the same process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import duckdb
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from contracts import (
    ChainContract,
    Ledger,
    LedgerConflictError,
    LedgerTransactionFailedError,
    RoundMetrics,
    RoundRecord,
    TxResult,
    keccak_id,
)
from flai.crypto import CryptoError, KeyStore, PublishedModel, fetch_model
from flai.learning.metrics import Metrics
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig
from flai.lineage import LineageEntry, LineageMirror, model_context, participants_commitment
from flai.settings import get_settings
from tasks.chain import ledger
from flai.storage import StorageDaemonError, StorageError, compute_cid
from tasks.publish import content_store, model_vector


class LineageConflictError(RuntimeError):
    """The chain holds other content for this task's registration or round; nothing changed.

    ``what`` names it: ``"the registration"`` (another spec, owner or dataset) or ``"round N"``.
    """

    def __init__(self, task_id: str, what: str) -> None:
        super().__init__(
            f"{what} of task {task_id!r} is already recorded on chain with other content; "
            "lineage cannot be rewritten, so another job needs a new task id")
        self.task_id = task_id
        self.what = what


@dataclass(frozen=True)
class TaskSpec:
    """What a task trains: stored in the clear, its CID registered on chain with the task."""

    task_id: str
    dataset: str
    model: str
    features: int
    strategy: str
    fit: FitConfig  # as asked of providers in round 1
    seed: int
    # ``dao:<domain>``: approved on chain by that domain's DAO, paid once its model is
    # accepted; ``ungoverned``: run directly, paid by nobody.
    governance: str = "ungoverned"

    def to_json(self) -> bytes:
        """Canonical JSON: the same spec always gives the same bytes, hence the same CID."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class RoundLineage:
    """Where a round is recorded: the transaction that recorded it (the first, on a retry)."""

    chain_round: int  # from 0
    tx_hash: str
    block_number: int
    already_recorded: bool


def round_transactions(chain: Ledger, task_id: str, chain_round: int | None = None,
                       from_block: int | None = None) -> dict[int, TxResult]:
    """The transaction that recorded each round of ``task_id`` (or only ``chain_round``).

    Read from ``RoundRecorded`` events, which only a first recording emits.
    """
    filters: dict[str, object] = {"taskId": keccak_id(task_id)}
    if chain_round is not None:
        filters["round"] = chain_round
    event = chain.contract(ChainContract.REGISTRY).events.RoundRecorded()
    logs = event.get_logs(argument_filters=filters,
                          from_block=chain.manifest.deployment_block if from_block is None else from_block)
    return {log["args"]["round"]: TxResult(log["transactionHash"].to_0x_hex(), log["blockNumber"])
            for log in logs}


def _transient(task, task_run, state) -> bool:
    """Retry when the node, the IPFS daemon or the mirror file was briefly unavailable."""
    return isinstance(state.data, (OSError, LedgerTransactionFailedError, StorageDaemonError,
                                   duckdb.IOException))


# A node that is down (restarting anvil, say) gets about a minute to return before the round
# fails; recording is idempotent, so a retry after a lost receipt records nothing twice, and a
# retried run resumes after the last round on chain.
@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def record_lineage(spec: TaskSpec, round_number: int, model: PublishedModel,
                   participants: tuple[str, ...], quality_report_hash: str, metrics: Metrics,
                   samples: int) -> RoundLineage:
    """Register the task (no-op if identical), record the round, mirror it in DuckDB.

    On chain: the model's CID and plaintext SHA-256, :func:`flai.lineage.participants_commitment`
    of the aggregate's participants, the combined quality report hash, and the federated
    evaluation's accuracy and log loss with the participant and training sample counts.
    """
    chain, store = ledger(), content_store()
    task_key = keccak_id(spec.task_id)
    spec_cid = store.put(spec.to_json())
    store.pin(spec_cid)
    try:
        chain.register_task(task_key, chain.sender, spec_cid, spec.dataset)
    except LedgerConflictError as error:
        raise LineageConflictError(spec.task_id, "the registration") from error
    chain_round = round_number - 1
    commitment = participants_commitment(participants)
    recorded = RoundMetrics.from_floats(metrics.accuracy, metrics.loss, len(participants), samples)
    try:
        result = chain.record_round(task_key, chain_round, model.cid, model.sha256, commitment,
                                    quality_report_hash, recorded)
    except LedgerConflictError as error:
        raise LineageConflictError(spec.task_id, f"round {round_number}") from error
    first = TxResult(result.tx_hash, result.block_number)
    if result.already_recorded:
        block = chain.get_round(task_key, chain_round).recorded_block
        first = round_transactions(chain, spec.task_id, chain_round, from_block=block)[chain_round]
        get_run_logger().info("round %d of %s was already recorded in %s", round_number,
                              spec.task_id, first.tx_hash)
    LineageMirror.for_data_dir(get_settings().data_dir).record(LineageEntry(
        chain.chain.chain_id, chain.manifest.addresses[ChainContract.REGISTRY], spec.task_id,
        chain_round, model.cid, model.sha256, tuple(sorted(participants)), commitment,
        quality_report_hash, recorded.accuracy_ppm, recorded.loss_micro, samples, first.tx_hash,
        first.block_number))
    return RoundLineage(chain_round, first.tx_hash, first.block_number, result.already_recorded)


@dataclass(frozen=True)
class ResumePoint:
    """How far a task's training got on chain when a run of it starts."""

    rounds_done: int  # flow rounds recorded on chain; the run continues with the next one
    vector: torch.Tensor | None = field(default=None, repr=False)  # the last one's model
    accuracy: float | None = None  # its federated accuracy, as recorded (to the ppm)


# Read afresh on every call, never from a cached or persisted result: a retried run must see
# the rounds its previous attempt recorded.
@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2,
      retry_condition_fn=_transient)
def resume_point(spec: TaskSpec) -> ResumePoint:
    """Where a run of ``spec`` starts: after the last round the chain holds for its task id.

    A task with recorded rounds must have been registered with this very spec (another job
    under the same id raises :class:`LineageConflictError` before any work); its last model is
    fetched from the store, opened under the task's key and checked against the SHA-256 on
    chain, so training continues from exactly the recorded model.
    """
    chain = ledger()
    task_key = keccak_id(spec.task_id)
    done = chain.round_count(task_key)
    if not done:
        return ResumePoint(0)
    if chain.get_task(task_key).spec_cid != compute_cid(spec.to_json()):
        raise LineageConflictError(spec.task_id, "the registration")
    record = chain.get_round(task_key, done - 1)
    key = KeyStore.for_data_dir(get_settings().data_dir).load(spec.task_id)
    model = fetch_model(content_store(), record.model_cid, key, model_context(spec.task_id, done),
                        record.model_sha256)
    return ResumePoint(done, model_vector(model, ModelKind(spec.model), spec.features),
                       record.metrics.accuracy)


@dataclass(frozen=True)
class VerifiedRound:
    """A recorded round after fetching, opening and hashing its model. ``problem`` empty: verified."""

    round_number: int  # from 1, as the flow counts
    participants: int
    accuracy: float
    model_cid: str
    tx_hash: str
    block_number: int
    problem: str = ""

    @property
    def verified(self) -> bool:
        return not self.problem


def verify_history(task_id: str) -> list[VerifiedRound]:
    """Every round of ``task_id`` the chain holds, each model checked against its record.

    The store re-hashes every block against the CID, the envelope must open under the task's
    key and the round's context, and the plaintext must hash to the SHA-256 on chain.
    """
    chain = ledger()
    transactions = round_transactions(chain, task_id)
    keys = KeyStore.for_data_dir(get_settings().data_dir)
    return [_verify(task_id, record, transactions.get(record.round), keys)
            for record in chain.rounds(keccak_id(task_id))]


def _verify(task_id: str, record: RoundRecord, tx: TxResult | None, keys: KeyStore) -> VerifiedRound:
    number = record.round + 1
    problem = "" if tx is not None else "no RoundRecorded event for this round"
    if not problem:
        try:
            fetch_model(content_store(), record.model_cid, keys.load(task_id),
                        model_context(task_id, number), record.model_sha256)
        except (StorageError, CryptoError) as error:  # a missing or unusable key is a CryptoError
            problem = f"{type(error).__name__}: {error}"
    return VerifiedRound(number, record.metrics.participants, record.metrics.accuracy,
                         record.model_cid, tx.tx_hash if tx else "", tx.block_number if tx else 0,
                         problem)
