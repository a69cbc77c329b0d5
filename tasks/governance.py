"""The steps that tie a DAO's decisions to the flows they start: the gate a governed training
run passes first, its validation report, and the governance sync's reading of the chain.

A governed task lives in ``TaskRegistry`` (contracts/governance.py): a modeler proposes it
with its job document's CID and an escrowed pool, its domain's SubDAO approves it, a run
trains it and records the model with a validation report, the SubDAO votes the model in or
out, and settlement releases the pool to the contributors of an accepted model. Every step
here is retry-safe: the registry refuses a second approval, result or release, and records
identical content again as a no-op.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from contracts import (
    Governance,
    GovernedTask,
    LedgerNotFoundError,
    LedgerTransactionFailedError,
    TaskState,
    keccak_id,
)
from flai.learning.config import JobSpec
from flai.learning.fairness import FairnessMetrics
from flai.learning.metrics import Metrics
from flai.storage import StorageDaemonError
from tasks.chain import ledger
from tasks.publish import content_store

VALIDATION_FORMAT = "flai.validation/1"
PPM = 10**6


class TaskNotApprovedError(RuntimeError):
    """A governed run was asked to train a task its DAO has not approved (or no longer may)."""

    def __init__(self, task_name: str, state: TaskState) -> None:
        where = "unknown to the task registry" if state is TaskState.NONE else f"{state.name.lower()} on chain"
        super().__init__(f"task {task_name!r} is {where}, not approved: a governed run trains "
                         "only what its domain's DAO approved")
        self.task_name = task_name
        self.state = state


def governance() -> Governance:
    """The DAOs and the task registry of the configured deployment, as its coordinator."""
    return Governance(ledger())


def governed_task(task_name: str) -> GovernedTask:
    return governance().task(keccak_id(task_name))


def _transient(task, task_run, state) -> bool:
    return isinstance(state.data, (OSError, LedgerTransactionFailedError, StorageDaemonError))


# -- a governed run -------------------------------------------------------------------------


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def approved_task(task_name: str) -> GovernedTask:
    """The task, if its DAO approved it and it is not trained yet, or trained already (a retry
    of a run that recorded its result: nothing is trained again). Anything else raises
    :class:`TaskNotApprovedError` before any actor starts."""
    try:
        found = governed_task(task_name)
    except LedgerNotFoundError:
        raise TaskNotApprovedError(task_name, TaskState.NONE) from None
    if found.state not in (TaskState.APPROVED, *TRAINED_OR_LATER):
        raise TaskNotApprovedError(task_name, found.state)
    return found


TRAINED_OR_LATER = (TaskState.TRAINED, TaskState.ACCEPTED, TaskState.MODEL_REJECTED,
                    TaskState.SETTLED)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def job_spec(found: GovernedTask) -> JobSpec:
    """The job document the DAO voted on, read back by its CID (the store checks the bytes)."""
    return JobSpec.from_json(content_store().get(found.spec_cid))


@dataclass(frozen=True)
class ValidationReport:
    """What the DAO's members vote on: the model's federated quality and its fairness."""

    task: str
    model_cid: str
    metrics: Metrics
    fairness: FairnessMetrics

    def to_json(self) -> bytes:
        document = {"format": VALIDATION_FORMAT, **asdict(self)}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ValidationReport:
        document = json.loads(data)
        if document.pop("format", None) != VALIDATION_FORMAT:
            raise ValueError(f"not a {VALIDATION_FORMAT} document")
        return cls(document["task"], document["model_cid"], Metrics(**document["metrics"]),
                   FairnessMetrics(**document["fairness"]))


def validation_report(found: GovernedTask) -> ValidationReport:
    """The report a trained task recorded, read back by its CID."""
    return ValidationReport.from_json(content_store().get(found.report_cid))


@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def record_validation(task_name: str, model_cid: str, metrics: Metrics,
                      fairness: FairnessMetrics) -> str:
    """Store the validation report and record it on chain with the model's CID and its four
    figures (ppm); returns the report's CID. Recording the same result again is a no-op."""
    report = ValidationReport(task_name, model_cid, metrics, fairness)
    store = content_store()
    cid = store.put(report.to_json())
    store.pin(cid)
    governance().record_result(
        keccak_id(task_name), model_cid, cid, _ppm(metrics.accuracy), _ppm(metrics.auc),
        _ppm(fairness.demographic_parity_difference), _ppm(fairness.equal_opportunity_difference))
    return cid


UNDEFINED_PPM = 2**32 - 1
"""What the registry holds for a gap that is not defined (fewer than two groups have the rate)."""


def _ppm(fraction: float | None) -> int:
    """A fraction in [0, 1] as parts per million; an undefined one as :data:`UNDEFINED_PPM`."""
    return UNDEFINED_PPM if fraction is None else round(fraction * PPM)
