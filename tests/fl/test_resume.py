"""A failed training job is retried and resumes after the last round recorded on chain."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
import torch
from prefect import flow

from actors import federation as fed
from contracts import keccak_id
from flai.datasets import Dataset
from flai.learning.features import feature_count
from flai.learning.metrics import Metrics
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig
from flows.fl_round import RoundResult
from flows.fl_training import TrainingJob, TrainingResult, fl_training
from tasks.lineage import LineageConflictError, TaskSpec, ledger, record_lineage, resume_point
from tasks.publish import publish_global_model

pytestmark = pytest.mark.slow

FEATURES = feature_count(Dataset.HEART.schema)


class WorkerLost(RuntimeError):
    """Stands in for a crash between rounds."""


@flow(retries=1, retry_delay_seconds=0)
def retried_training(job: TrainingJob, on_round) -> TrainingResult:
    """A run with one Prefect retry: the retry re-enters the job under the same task id."""
    return fl_training(job, on_round=on_round)


def spec_of(job: TrainingJob) -> TaskSpec:
    """The spec the job's rounds register its task with."""
    return TaskSpec(job.task_id, "heart", job.kind.value, FEATURES, "FedAvg", FitConfig(), job.seed)


def test_a_failed_job_resumes_at_the_next_round_and_leaves_recorded_rounds_alone(
        prefect_server, heart_federation: fed.Federation):
    job = TrainingJob(f"resume-{uuid.uuid4().hex[:8]}", heart_federation, rounds=3)
    task = keccak_id(job.task_id)
    seen: list[RoundResult] = []
    before_failure = []

    def fail_once_after_round_2(result: RoundResult) -> None:
        seen.append(result)
        if result.round_number == 2 and not before_failure:
            before_failure.extend(ledger().rounds(task))
            raise WorkerLost("lost after round 2")

    result = retried_training(job, fail_once_after_round_2)

    assert [r.round_number for r in seen] == [1, 2, 3]  # rounds 1 and 2 were not trained again
    assert result.resumed_after == 2 and [r.round_number for r in result.rounds] == [3]
    assert [r.round for r in before_failure] == [0, 1]
    on_chain = ledger().rounds(task)
    assert on_chain[:2] == before_failure  # same CIDs, hashes, metrics and recording blocks
    assert on_chain[2].model_cid == result.final.model_cid

    # A run of the finished job trains nothing and records nothing.
    again = fl_training(job)
    assert again.rounds == [] and again.resumed_after == 3 and again.curve is None
    assert ledger().rounds(task) == on_chain

    # Round 2's model, published again as the failed attempt computed it: the same CID.
    round_2 = seen[1]
    published = publish_global_model(job.task_id, 2, job.kind, FEATURES, round_2.global_vector)
    assert published.cid == round_2.model_cid == on_chain[1].model_cid  # sealing is deterministic

    # Recording that round again with the same model is a no-op.
    again_recorded = record_lineage(spec_of(job), 2, published, round_2.participants,
                                    round_2.quality_report_hash, round_2.metrics, round_2.samples)
    assert again_recorded.already_recorded and again_recorded.tx_hash == round_2.tx_hash
    assert ledger().rounds(task) == on_chain


def test_the_resume_point_is_the_recorded_model_and_another_job_is_refused(prefect_server):
    task_id = f"taken-{uuid.uuid4().hex[:8]}"
    spec = TaskSpec(task_id, "heart", ModelKind.LOGREG.value, FEATURES, "FedAvg", FitConfig(), 0)
    assert resume_point(spec).rounds_done == 0
    vector = torch.arange(FEATURES + 1, dtype=torch.float64) / 7
    published = publish_global_model(task_id, 1, ModelKind.LOGREG, FEATURES, vector)
    record_lineage(spec, 1, published, ("a", "b"), "00" * 32, Metrics(100, 0.5, 0.5, 0.5, 0.69), 100)

    point = resume_point(spec)
    assert point.rounds_done == 1 and point.accuracy == 0.5 and point.vector.equal(vector)
    # The same task id with another spec (here another seed) is another job: refused up front.
    with pytest.raises(LineageConflictError, match="the registration"):
        resume_point(replace(spec, seed=1))
