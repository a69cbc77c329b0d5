"""Fairness across sex from securely summed group confusion counts: equal to the pooled-data
reference, no provider's counts cross an actor boundary, and the formulas on hand-made counts.

Tolerance: the counts are whole numbers, exact on the fixed-point grid (``2**16``) and exact in
the ring's sum, so the secure sums equal the plaintext counts exactly; the rates are then
compared with the reference within 1e-12, float rounding of two ways of dividing.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actors import federation as fed
from actors.provider import HOLDOUT_FRACTION
from flai.datasets import Dataset
from flai.datasets.partition import holdout_split
from flai.datasets.schema import Categorical, Numeric, TabularSchema
from flai.learning import features, local
from flai.learning.fairness import (
    FairnessMetrics,
    GroupConfusion,
    SensitiveAttributeUndeclared,
    central_fairness,
    confusion_layout,
    fairness_from_counts,
    group_counts,
    group_of_rows,
    sensitive_attribute,
)
from flai.learning.metrics import count_layout
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig
from flai.settings import get_settings
from tasks.fairness import evaluate_fairness
from tests.fl.boundary import only_scalars

TOLERANCE = 1e-12
HEART = Dataset.HEART.schema
SEXES = sensitive_attribute(HEART).domain


def _splits(files: dict[str, Path]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Each provider's (train, holdout), split as its actor splits it."""
    return {name: holdout_split(pd.read_parquet(path), HOLDOUT_FRACTION, get_settings().seed)
            for name, path in files.items()}


def _trained_model(splits: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> torch.nn.Module:
    """A deterministic logistic regression, trained on the pooled training rows."""
    train = pd.concat([train for train, _ in splits.values()], ignore_index=True)
    X, y = features.encode(train, HEART)
    model = ModelKind.LOGREG.build(X.shape[1], seed=0)
    local.train(model, X, y, FitConfig(epochs=5), seed=0)
    return model


def _assert_close(secure: FairnessMetrics, reference: FairnessMetrics) -> None:
    assert secure.attribute == reference.attribute
    assert secure.group_sizes == reference.group_sizes
    for name in ("positive_rates", "true_positive_rates"):
        assert getattr(secure, name) == pytest.approx(getattr(reference, name), abs=TOLERANCE)
    assert secure.demographic_parity_difference == pytest.approx(
        reference.demographic_parity_difference, abs=TOLERANCE)
    assert secure.equal_opportunity_difference == pytest.approx(
        reference.equal_opportunity_difference, abs=TOLERANCE)


def test_secure_fairness_equals_the_pooled_reference(prefect_server, heart_federation,
                                                     heart_files):
    splits = _splits(heart_files)
    model = _trained_model(splits)

    secure = evaluate_fairness(heart_federation, heart_federation.providers, to_vector(model),
                               ModelKind.LOGREG, contribution_id="fairness-test/pooled")

    holdout = pd.concat([holdout for _, holdout in splits.values()], ignore_index=True)
    X, y = features.encode(holdout, HEART)
    with torch.no_grad():  # federated evaluation's threshold: sigmoid(logit) >= 0.5
        predicted = (torch.sigmoid(model(X).squeeze(1)) >= 0.5).double().numpy()
    reference = central_fairness("sex", SEXES, y.double().numpy(), predicted,
                                 holdout["sex"].tolist())
    _assert_close(secure, reference)
    # A trained model on real data: both groups hold positives, and the metrics say something.
    assert sum(secure.group_sizes.values()) == len(holdout)
    assert all(rate is not None for rate in secure.true_positive_rates.values())
    assert 0 < secure.demographic_parity_difference < 1
    assert 0 < secure.equal_opportunity_difference < 1


def test_no_provider_group_counts_cross_an_actor_boundary(prefect_server, heart_federation,
                                                          heart_files, monkeypatch):
    splits = _splits(heart_files)
    model = _trained_model(splits)
    # Every result of every actor call the orchestrator waits for passes through ``collect``.
    crossed: list[tuple[str, object]] = []
    collect = fed.collect

    def recording_collect(refs, timeout_s):
        results, failures = collect(refs, timeout_s)
        crossed.extend(results.items())
        return results, failures

    monkeypatch.setattr(fed, "collect", recording_collect)
    evaluate_fairness(heart_federation, heart_federation.providers, to_vector(model),
                      ModelKind.LOGREG, contribution_id="fairness-test/boundary")

    from_providers = [value for party, value in crossed if party in heart_federation.providers]
    from_aggregator = [value for party, value in crossed if party == fed.AGGREGATOR]
    assert from_providers and len(from_aggregator) == 1
    for value in from_providers:
        assert only_scalars(value), f"a provider returned more than metadata: {value!r}"
        assert len(pickle.dumps(value)) < 1024
    # Only these cross from providers: the staging's report, "ready" (a bool), None from
    # joining and accepting the sum, and a ping's answer.
    kinds = {type(value).__name__ for value in from_providers}
    assert {"EvalReport", "bool", "NoneType"} <= kinds <= {"EvalReport", "bool", "NoneType",
                                                           "Incarnation"}
    fields = {(type(v).__name__, f.name) for v in from_providers if dataclasses.is_dataclass(v)
              for f in dataclasses.fields(v)}
    assert fields <= {("Incarnation", "provider"), ("Incarnation", "boot_id"),
                      ("EvalReport", "provider"), ("EvalReport", "samples")}
    # The aggregator alone receives a vector: the sum, which is no provider's own counts.
    own = {name: group_counts(model, *features.encode(holdout, HEART),
                              group_of_rows(holdout, HEART), len(SEXES))
           for name, (_, holdout) in splits.items()}
    total = from_aggregator[0]
    assert torch.equal(total, sum(own.values()))
    assert not any(torch.equal(total, counts) for counts in own.values())


# Formulas on hand-made counts.

def test_two_groups_give_the_absolute_differences():
    metrics = fairness_from_counts("sex", [GroupConfusion("female", tp=2, fp=1, tn=5, fn=2),
                                           GroupConfusion("male", tp=6, fp=2, tn=10, fn=2)])
    assert metrics.group_sizes == {"female": 10, "male": 20}
    assert metrics.positive_rates == pytest.approx({"female": 0.3, "male": 0.4})
    assert metrics.true_positive_rates == {"female": 0.5, "male": 0.75}
    assert metrics.demographic_parity_difference == pytest.approx(0.1)
    assert metrics.equal_opportunity_difference == 0.25


def test_a_group_without_positives_leaves_equal_opportunity_undefined():
    """Convention: no positive labels, no TPR (None); fewer than two TPRs, no difference."""
    metrics = fairness_from_counts("sex", [GroupConfusion("female", tp=0, fp=1, tn=9, fn=0),
                                           GroupConfusion("male", tp=6, fp=2, tn=10, fn=2)])
    assert metrics.true_positive_rates == {"female": None, "male": 0.75}
    assert metrics.equal_opportunity_difference is None
    assert metrics.demographic_parity_difference == pytest.approx(0.4 - 0.1)


def test_an_empty_group_has_no_rates_and_a_third_group_widens_the_gap():
    metrics = fairness_from_counts("g", [GroupConfusion("a", 0, 0, 0, 0),
                                         GroupConfusion("b", 1, 1, 1, 1),
                                         GroupConfusion("c", 3, 0, 1, 0)])
    assert metrics.positive_rates == {"a": None, "b": 0.5, "c": 0.75}
    assert metrics.true_positive_rates == {"a": None, "b": 0.5, "c": 1.0}
    assert (metrics.demographic_parity_difference, metrics.equal_opportunity_difference) == (0.25, 0.5)
    alone = fairness_from_counts("g", [GroupConfusion("a", 0, 0, 0, 0),
                                       GroupConfusion("b", 1, 1, 1, 1)])
    assert alone.demographic_parity_difference is None


def test_the_reference_agrees_on_hand_made_rows_including_a_group_without_positives():
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 0.0])
    predicted = np.array([1, 1, 0, 0, 1, 0, 1, 0.0])
    sexes = ["male", "male", "male", "male", "male", "female", "female", None]
    reference = central_fairness("sex", SEXES, labels, predicted, sexes)
    counted = fairness_from_counts("sex", [GroupConfusion("female", tp=0, fp=1, tn=1, fn=0),
                                           GroupConfusion("male", tp=2, fp=1, tn=1, fn=1)])
    _assert_close(reference, counted)
    assert reference.equal_opportunity_difference is None
    assert math.isclose(reference.demographic_parity_difference, 0.6 - 0.5)


def test_group_counts_add_up_to_evaluation_counts_and_skip_rows_without_a_group():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(50, 3, generator=generator)
    y = (torch.rand(50, generator=generator) < 0.4).float()
    groups = torch.randint(-1, 2, (50,), generator=generator)  # -1: attribute missing
    model = ModelKind.LOGREG.build(3, seed=0)

    counts = group_counts(model, X, y, groups, 2).view(2, 4)
    grouped = groups >= 0
    overall = local.evaluation_counts(model, X[grouped], y[grouped])
    confusion = [count_layout().index(name) for name in ("tp", "fp", "tn", "fn")]
    assert torch.equal(counts.sum(0), overall[confusion])
    assert counts.sum().item() == grouped.sum().item()


def test_the_attribute_is_read_raw_and_must_be_declared():
    assert HEART.sensitive == "sex"
    assert Dataset.CENSUS.schema.sensitive == "sex"
    assert len(confusion_layout(Dataset.CENSUS.schema)) == 8
    undeclared = TabularSchema("t", (Numeric("x", 0, 1), Numeric("y", 0, 1, integral=True)), "y")
    with pytest.raises(SensitiveAttributeUndeclared):
        sensitive_attribute(undeclared)
    numeric = dataclasses.replace(undeclared, sensitive="x")
    with pytest.raises(SensitiveAttributeUndeclared, match="not categorical"):
        sensitive_attribute(numeric)
    coded = TabularSchema("t", (Categorical("s", ("a", "b")), Numeric("y", 0, 1)), "y",
                          sensitive="s")
    assert group_of_rows(pd.DataFrame({"s": ["b", "c", None, "a"]}), coded).tolist() == [1, -1, -1, 0]
