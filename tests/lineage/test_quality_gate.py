"""The data-quality gate inside a real FL round: a drifted provider sits the round out."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from actors import federation as fed
from contracts import keccak_id
from flai.datasets import Dataset, partition_path
from flai.lineage import combined_quality_hash, participants_commitment
from flows.fl_training import TrainingJob, fl_training
from tasks.chain import ledger

pytestmark = pytest.mark.slow


def test_a_drifted_provider_is_excluded_with_the_reason_and_the_round_completes(
        prefect_server, ray_cluster, heart_files, data_dir: Path):
    *healthy, source = heart_files
    drifted = f"drifted-{uuid.uuid4().hex[:8]}"
    frame = pd.read_parquet(heart_files[source]).drop(columns=["chol"])  # a column went missing,
    frame.loc[:20, "age"] = float("nan")  # a feed broke,
    frame.loc[:5, "disease"] = 2  # and a new label crept in
    path = partition_path(data_dir, "heart-4", drifted, Dataset.HEART.schema.name)
    path.parent.mkdir(parents=True)
    frame.to_parquet(path, index=False)
    federation = fed.Federation(f"drift-{uuid.uuid4().hex[:8]}", Dataset.HEART, (*healthy, drifted),
                                "heart-4")
    assert fed.start(federation) == {}
    try:
        job = TrainingJob(f"drift-{uuid.uuid4().hex[:8]}", federation, rounds=1)
        result = fl_training(job).final
    finally:
        fed.stop(federation)

    assert set(result.participants) == set(healthy)
    reason = result.dropped[drifted]
    assert reason.startswith("failed the quality gate: ")
    for expectation in ("expect_column_to_exist(chol)", "expect_column_values_to_not_be_null(age)",
                        "expect_column_values_to_be_in_set(disease)"):
        assert expectation in reason
    assert not result.quality[drifted].passed
    assert all(result.quality[name].passed for name in healthy)
    # The chain binds the round to all four verdicts and to the three participants.
    record = ledger().get_round(keccak_id(job.task_id), 0)
    verdicts = {name: report.report_hash for name, report in result.quality.items()}
    assert record.quality_report_hash.hex() == combined_quality_hash(verdicts)
    assert record.participants_commitment.hex() == participants_commitment(healthy)
    assert record.metrics.participants == 3


def test_a_provider_whose_file_is_corrupt_or_missing_sits_out_and_the_job_goes_on(
        prefect_server, ray_cluster, heart_files, data_dir: Path):
    """Providers load their own files; the orchestrator never reads or rewrites them."""
    split = f"owned-{uuid.uuid4().hex[:8]}"
    healthy = list(heart_files)[:2]
    for name in healthy:
        path = partition_path(data_dir, split, name, "heart")
        path.parent.mkdir(parents=True)
        path.write_bytes(heart_files[name].read_bytes())
    corrupt = partition_path(data_dir, split, "corrupt", "heart")
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"PAR1 this is no parquet")
    federation = fed.Federation(split, Dataset.HEART, (*healthy, "corrupt", "missing"))
    assert fed.start(federation) == {}  # every actor starts; the two sit out at the gate
    try:
        result = fl_training(TrainingJob(split, federation, rounds=1)).final
    finally:
        fed.stop(federation)

    assert set(result.participants) == set(healthy)
    assert result.dropped["corrupt"] == "failed the quality gate: partition file unreadable"
    assert result.dropped["missing"] == "failed the quality gate: partition file missing"
    assert corrupt.read_bytes() == b"PAR1 this is no parquet"
