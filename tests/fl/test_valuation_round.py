"""Valuation as a step of the round: Shapley values of the accepted updates, computed in MPC
by the real provider actors, equal to plaintext Shapley over the same updates and rows.

Tolerances as in ``tests/valuation/test_secure_utilities.py`` (fixed point at 2**-16 and the
protocol's e^x / log(1 + x) approximations): a coalition's mean log loss within 5e-4, a
Shapley value within twice that.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
import ray
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from actors import federation as fed
from actors.provider import ContributionRefused, Provider
from flai.learning.features import feature_count
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig, strategy_for
from flai.mpc.secure_utilities import UtilitySpec
from flai.reporting import artifact_key
from flai.rewards.contributions import ContributionRecord
from flai.settings import get_settings
from flai.valuation.shapley import ExactShapley
from flai.valuation.utility import CoalitionUtility, Quality, coalition_qualities, validation_sample
from flows.fl_training import TrainingJob, fl_training
from tasks.chain import ledger
from tasks.publish import content_store
from tasks.secure_aggregation import RoundFailed, run_secure_session, secure_sum_over
from tasks.settlement import contributions_key
from tasks.valuation import VALIDATION_ROWS, value_accepted

pytestmark = pytest.mark.slow

LOSS_TOLERANCE = 5e-4
VALUE_TOLERANCE = 2 * LOSS_TOLERANCE


def _staged_and_holdouts(job: TrainingJob, files: dict[str, Path], start, round_number: int):
    """What each provider staged in the round and the rows it valued it on, recomputed by the
    provider's own code over the same file, model, configuration and seeds (training is
    deterministic on one thread)."""
    settings = get_settings()
    config = strategy_for(job.mu, job.fit, job.server).configure_fit(round_number)
    staged, holdouts = {}, []
    for name in job.federation.providers:
        provider = Provider(name, job.federation.dataset, files[name], settings.max_update_norm,
                            seed=settings.seed)
        assert provider.fit("replay", start, job.kind, config, job.seed + round_number).accepted
        staged[name] = provider._staged["replay"]
        holdouts.append(validation_sample(*provider._holdout_features, rows=VALIDATION_ROWS,
                                          seed=job.seed + round_number))
    return staged, holdouts


def test_a_valued_round_gives_every_participant_its_shapley_value_as_in_plaintext(
        prefect_server, heart_federation: fed.Federation, heart_files: dict[str, Path]):
    job = TrainingJob(f"valued-{uuid.uuid4().hex[:8]}", heart_federation, rounds=1,
                      valuation=ExactShapley())
    state = fl_training(job, return_state=True)
    (round_,) = state.result().rounds
    run_id = state.state_details.flow_run_id

    participants = heart_federation.providers
    assert round_.participants == participants and round_.valuation is not None
    assert round_.valuation.strategy == "ExactShapley" and round_.valuation.valued.batches == 1
    values, qualities = round_.values, round_.valuation.valued.qualities
    assert set(values) == set(participants) and len(qualities) == 2 ** len(participants)
    # Efficiency over the utilities the aggregator was revealed.
    gain = qualities[frozenset(participants)].utility - qualities[frozenset()].utility
    assert sum(values.values()) == pytest.approx(gain, abs=1e-9)
    assert gain > 0  # a round of training improved the model on the providers' holdouts

    # The same in plaintext, from the same updates and holdout rows.
    start = to_vector(job.kind.build(feature_count(heart_federation.dataset.schema), job.seed))
    staged, holdouts = _staged_and_holdouts(job, heart_files, start, round_number=1)
    coalitions = list(qualities)
    plain = dict(zip(coalitions, coalition_qualities(start, staged, holdouts, coalitions)))
    for coalition in coalitions:
        assert abs(qualities[coalition].log_loss - plain[coalition].log_loss) <= LOSS_TOLERANCE
    expected = ExactShapley().value(list(participants),
                                    CoalitionUtility(lambda cs: [plain[c] for c in cs]))
    for name in participants:
        assert values[name] == pytest.approx(expected[name], abs=VALUE_TOLERANCE), name

    # Recorded with the round: the contribution record on chain carries the values.
    chain = ledger()
    record = ContributionRecord.from_json(content_store().get(
        chain.get_task(contributions_key(job.task_id, 1)).spec_cid))
    assert {c.provider: c.value for c in record.contributions} == values
    assert all(c.eligible and c.samples > 0 for c in record.contributions)

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    runs = {run.name: run for run in task_runs}
    for step in ("value-contributions", "record-contributions"):
        assert runs[f"round-1/{step}"].state.is_completed()
    (table,) = [a for a in artifacts if a.key == artifact_key("fl-round", job.task_id)]
    assert {row["provider"]: row["value"] for row in json.loads(table.data)} == \
        {name: round(value, 6) for name, value in values.items()}

    seconds = {step: runs[f"round-1/{step}"].total_run_time.total_seconds()
               for step in ("train-locally", "secure-aggregate", "value-contributions")}
    print(f"\nheart, {len(participants)} providers, round 1: training {seconds['train-locally']:.2f} s,"
          f" secure aggregation {seconds['secure-aggregate']:.2f} s, valuation "
          f"{seconds['value-contributions']:.2f} s (its session {round_.valuation.seconds:.2f} s)")


def test_providers_return_nothing_the_aggregator_scalars_and_a_contribution_is_valued_once(
        heart_federation: fed.Federation):
    providers = heart_federation.providers
    start = to_vector(ModelKind.LOGREG.build(feature_count(heart_federation.dataset.schema), 0))
    ray.get([fed.provider(heart_federation, name).fit.remote("v/update", start, ModelKind.LOGREG,
                                                             FitConfig(), 0) for name in providers])
    # Not accepted yet: nothing to value.
    with pytest.raises(RoundFailed, match="no unspent contribution"):
        value_accepted(heart_federation, providers, "v/update", start, ExactShapley(), seed=0)
    secure_sum_over(heart_federation, providers, "v/update", len(start) + 1)

    crossed, sessions = {}, []
    spec = UtilitySpec(providers, start, VALIDATION_ROWS)

    def join(provider, session):
        sessions.append(session)
        name = ray.get(provider.ping.remote()).provider
        crossed[name] = provider.join_secure_utilities.remote(session, "v/update", spec, 0)
        return crossed[name]

    def receive(aggregator, session):
        crossed["aggregator"] = aggregator.secure_utilities.remote(session, spec, ExactShapley())
        return crossed["aggregator"]

    run_secure_session(heart_federation, providers, "v/update",
                       ready=lambda p: p.can_value.remote("v/update"), join=join, receive=receive,
                       rerun=False)
    returned = {name: ray.get(ref) for name, ref in crossed.items()}
    assert all(returned[name] is None for name in providers)
    valued = returned["aggregator"]
    assert set(valued.values) == set(providers)
    assert all(type(v) is float for v in valued.values.values())
    assert all(isinstance(c, frozenset) and c <= set(providers) for c in valued.qualities)
    assert all(type(q) is Quality and all(type(getattr(q, f.name)) is float
                                          for f in dataclasses.fields(q))
               for q in valued.qualities.values())
    assert type(valued.batches) is int

    # A second valuation of the same contribution is refused, before a session and inside one.
    with pytest.raises(RoundFailed, match="no unspent contribution"):
        value_accepted(heart_federation, providers, "v/update", start, ExactShapley(), seed=0)
    refused = fed.provider(heart_federation, providers[0]).join_secure_utilities.remote(
        sessions[0], "v/update", spec, 0)
    with pytest.raises(ContributionRefused, match="valued already"):  # Ray raises the cause's type
        ray.get(refused)
