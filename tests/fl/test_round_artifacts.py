"""A job's rounds run as tasks of its one flow run, which carries every round's artifacts."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from actors import federation as fed
from flai.reporting import artifact_key
from flows.fl_training import TrainingJob, fl_training

pytestmark = pytest.mark.slow

STEPS = ("select-participants", "check-quality", "train-locally", "secure-aggregate",
         "federated-evaluate", "publish-global-model", "record-lineage")


def test_rounds_are_task_runs_of_the_training_run_and_their_tables_are_its_artifacts(
        prefect_server, heart_federation: fed.Federation):
    job = TrainingJob(f"one-run-{uuid.uuid4().hex[:8]}", heart_federation, rounds=2)
    state = fl_training(job, return_state=True)
    result = state.result()
    run_id = state.state_details.flow_run_id

    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])))
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))

    assert subflows == []
    # Each round's steps, in order, each run once and completed; round 2 starts after round 1.
    by_name = {run.name: run for run in task_runs}
    assert len(by_name) == len(task_runs)
    rounds = [[by_name[f"round-{n}/{step}"] for step in STEPS] for n in (1, 2)]
    for steps in rounds:
        assert all(run.state.is_completed() for run in steps)
        assert [run.start_time for run in steps] == sorted(run.start_time for run in steps)
    assert rounds[0][-1].end_time <= rounds[1][0].start_time

    # One table per round on this run itself (not on a task run), under the job's one key.
    tables = [a for a in artifacts if a.type == "table"]
    assert {a.key for a in tables} == {artifact_key("fl-round", job.task_id)}
    assert all(a.task_run_id is None for a in tables) and len(tables) == 2
    for r in result.rounds:
        (table,) = [a for a in tables if f"**Round {r.round_number}**" in a.description]
        assert r.model_cid in table.description and r.tx_hash in table.description
        assert {row["provider"] for row in json.loads(table.data)} == set(r.participants)
    (curve,) = [a for a in artifacts if a.type == "markdown"]
    assert curve.key == artifact_key("training-curve", job.task_id)
