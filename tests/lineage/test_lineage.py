"""A training job's lineage, end to end: embedded chain, DuckDB mirror, store, `flai lineage`.

One two-round job over the four hospitals is shared by the tests of this module.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from typer.testing import CliRunner

import cli.lineage  # noqa: F401  (registers `flai lineage` on the app)
from actors import federation as fed
from contracts import keccak_id
from cli import app
from flai.crypto import PublishedModel
from flai.datasets import Dataset
from flai.learning.features import feature_count
from flai.learning.metrics import Metrics
from flai.learning.models import ModelKind
from flai.learning.strategy import FitConfig
from flai.lineage import LineageMirror, participants_commitment
from flai.reporting import artifact_key
from flows.fl_training import TrainingJob, TrainingResult, fl_training
from tasks.lineage import LineageConflictError, TaskSpec, ledger, record_lineage
from tasks.publish import publish_global_model

pytestmark = pytest.mark.slow

FEATURES = feature_count(Dataset.HEART.schema)


@pytest.fixture(scope="module")
def trained(prefect_server, ray_cluster, heart_files) -> Iterator[TrainingResult]:
    federation = fed.Federation(f"lineage-{uuid.uuid4().hex[:8]}", Dataset.HEART, tuple(heart_files),
                                "heart-4")
    fed.start(federation)
    try:
        result = fl_training(TrainingJob(f"lineage-{uuid.uuid4().hex[:8]}", federation, rounds=2))
    finally:
        fed.stop(federation)
    yield result


def lineage_cli(task_id: str):
    return CliRunner().invoke(app, ["lineage", task_id], catch_exceptions=False)


def test_every_round_is_recorded_on_chain_and_mirrored_in_duckdb(trained, data_dir: Path):
    task = trained.job.task_id
    on_chain = ledger().rounds(keccak_id(task))
    mirrored = LineageMirror.for_data_dir(data_dir).rounds(task)

    assert [r.round for r in on_chain] == [r.round for r in mirrored] == [0, 1]
    for result, record, entry in zip(trained.rounds, on_chain, mirrored):
        assert record.model_cid == entry.model_cid == result.model_cid
        assert record.model_sha256.hex() == entry.model_sha256 == result.model_sha256
        assert record.participants_commitment.hex() == participants_commitment(result.participants)
        assert record.quality_report_hash.hex() == entry.quality_report_hash == result.quality_report_hash
        assert record.metrics.participants == len(result.participants) == 4
        assert record.metrics.accuracy == pytest.approx(result.metrics.accuracy, abs=1e-6)
        assert record.recorded_block == entry.block_number == result.block_number
        assert entry.tx_hash == result.tx_hash and entry.participants == tuple(sorted(result.participants))
        assert all(report.passed for report in result.quality.values())


def test_flai_lineage_verifies_every_round(trained):
    result = lineage_cli(trained.job.task_id)

    assert result.exit_code == 0, result.output
    assert "all 2 round(s) verified ✓" in result.output
    for r in trained.rounds:  # full values in the lines below the table
        assert f"round {r.round_number}: model {r.model_cid}  tx {r.tx_hash}" in result.output


def test_rounds_and_training_curve_are_attached_as_prefect_artifacts(trained):
    task = trained.job.task_id
    keys = [artifact_key("fl-round", task), artifact_key("training-curve", task)]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))

    tables = [a for a in artifacts if a.type == "table"]
    assert len(tables) == 2 and all(a.flow_run_id for a in tables)  # one per round, both on the training run
    for r in trained.rounds:
        (table,) = [a for a in tables if f"**Round {r.round_number}**" in a.description]
        assert r.model_cid in table.description and r.tx_hash in table.description
        assert {row["provider"] for row in json.loads(table.data)} == set(r.participants)
    (curve,) = [a for a in artifacts if a.type == "markdown"]
    assert "](data:image/png;base64," in curve.data and str(trained.curve.path) in curve.data
    assert trained.curve.path.read_bytes().startswith(b"\x89PNG")


def test_a_retried_lineage_step_records_nothing_new(trained, data_dir: Path):
    task = trained.job.task_id
    first = trained.rounds[0]
    mirror = LineageMirror.for_data_dir(data_dir)
    before = mirror.rounds(task)
    spec = TaskSpec(task, "heart", ModelKind.LOGREG.value, FEATURES, "FedAvg", FitConfig(), 0)

    retry = record_lineage(spec, 1, PublishedModel(first.model_cid, first.model_sha256, 0),
                           first.participants, first.quality_report_hash, first.metrics, first.samples)

    assert retry.already_recorded and retry.tx_hash == first.tx_hash
    assert ledger().round_count(keccak_id(task)) == 2
    assert mirror.rounds(task) == before


def test_a_tampered_stored_model_fails_verification(trained, data_dir: Path):
    cid = trained.rounds[1].model_cid
    (block,) = (data_dir / "ipfs" / "blocks").rglob(cid)
    original = block.read_bytes()
    block.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        result = lineage_cli(trained.job.task_id)
    finally:
        block.write_bytes(original)

    assert result.exit_code == 1
    assert "StorageIntegrityError" in result.output
    assert "1 of 2 round(s) failed verification" in result.output


def test_a_wrong_sha256_on_chain_fails_verification(prefect_server):
    task = f"wrong-sha-{uuid.uuid4().hex[:8]}"
    spec = TaskSpec(task, "heart", ModelKind.LOGREG.value, FEATURES, "FedAvg", FitConfig(), 0)
    published = publish_global_model(task, 1, ModelKind.LOGREG, FEATURES,
                                     torch.zeros(FEATURES + 1, dtype=torch.float64))
    wrong = PublishedModel(published.cid, hashlib.sha256(b"another model").hexdigest(), published.size)
    record_lineage(spec, 1, wrong, ("a", "b"), "00" * 32, Metrics(100, 0.5, 0.5, 0.5, 0.69), 100)

    result = lineage_cli(task)

    assert result.exit_code == 1
    assert "ModelIntegrityError" in result.output and "✗" in result.output


def test_a_recorded_round_cannot_be_rewritten(prefect_server, data_dir: Path):
    task = f"rewrite-{uuid.uuid4().hex[:8]}"
    spec = TaskSpec(task, "heart", ModelKind.LOGREG.value, FEATURES, "FedAvg", FitConfig(), 0)
    published = [publish_global_model(task, 1, ModelKind.LOGREG, FEATURES,
                                      torch.full((FEATURES + 1,), value, dtype=torch.float64))
                 for value in (0.0, 1.0)]
    metrics = Metrics(100, 0.5, 0.5, 0.5, 0.69)
    recorded = record_lineage(spec, 1, published[0], ("a", "b"), "00" * 32, metrics, 100)

    with pytest.raises(LineageConflictError, match="round 1 of task"):
        record_lineage(spec, 1, published[1], ("a", "b"), "00" * 32, metrics, 100)

    assert ledger().round_count(keccak_id(task)) == 1
    (entry,) = LineageMirror.for_data_dir(data_dir).rounds(task)
    assert (entry.model_cid, entry.tx_hash) == (published[0].cid, recorded.tx_hash)


def test_flai_lineage_of_an_unknown_task_fails_and_says_why(prefect_server):
    result = lineage_cli("never-trained")

    assert result.exit_code == 1
    assert "no rounds of task 'never-trained'" in result.output and "flai chain up" in result.output
