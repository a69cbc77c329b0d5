"""What crosses a provider actor's boundary: metadata only; the sum reaches the aggregator alone."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import ray
import torch

from actors import federation as fed
from flai.learning.features import feature_count
from flai.learning.metrics import count_layout
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig
from tasks.secure_aggregation import secure_sum_over
from tests.fl.boundary import only_scalars


def test_provider_returns_metadata_and_aggregator_alone_learns_the_sum(heart_federation):
    providers = heart_federation.providers
    handles = {name: fed.provider(heart_federation, name) for name in providers}
    start = to_vector(ModelKind.LOGREG.build(feature_count(heart_federation.dataset.schema), 0))

    crossed = []  # everything a provider actor returned to the orchestrator
    crossed += ray.get([h.ping.remote() for h in handles.values()])
    crossed += ray.get([h.describe.remote() for h in handles.values()])
    crossed += ray.get([h.fit.remote("p/update", start, ModelKind.LOGREG, FitConfig(), 0)
                        for h in handles.values()])
    crossed += ray.get([h.evaluate.remote("p/eval", start, ModelKind.LOGREG, 0)
                        for h in handles.values()])

    for value in crossed:
        assert only_scalars(value), f"a provider returned more than metadata: {value!r}"
        assert len(pickle.dumps(value)) < 1024
    # Only these metadata fields ever cross: names, a boot id, counts, a loss, a verdict.
    fields = {(type(v).__name__, f.name) for v in crossed for f in dataclasses.fields(v)}
    assert fields == {
        ("Incarnation", "provider"), ("Incarnation", "boot_id"),
        ("ProviderInfo", "provider"), ("ProviderInfo", "dataset"),
        ("ProviderInfo", "train_rows"), ("ProviderInfo", "holdout_rows"),
        ("FitReport", "provider"), ("FitReport", "samples"), ("FitReport", "train_loss"),
        ("FitReport", "accepted"), ("FitReport", "reason"),
        ("EvalReport", "provider"), ("EvalReport", "samples"),
    }

    # The secure sum: providers return nothing; the aggregator gets the sum of the updates.
    summed = secure_sum_over(heart_federation, providers, "p/update", len(start) + 1)
    assert summed.parties == providers
    total_weight = summed.total[-1].item()
    assert total_weight == sum(r.samples for r in crossed if type(r).__name__ == "FitReport")
    assert torch.isfinite(summed.total).all() and summed.total[:-1].abs().sum() > 0

    # A contribution is aggregated once: replaying the session is refused by the providers.
    try:
        secure_sum_over(heart_federation, providers, "p/update", len(start) + 1)
    except Exception as error:  # noqa: BLE001 - asserting on the refusal below
        assert "no unspent contribution" in str(error)
    else:
        raise AssertionError("a spent contribution was aggregated twice")

    evaluation = secure_sum_over(heart_federation, providers, "p/eval", len(count_layout()))
    assert evaluation.total[0].item() == sum(
        r.samples for r in crossed if type(r).__name__ == "EvalReport")
    assert np.isclose(evaluation.total[1:5].sum().item(), evaluation.total[0].item())
