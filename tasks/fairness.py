"""Federated fairness of a final model: every participant counts, on its holdout, how the model
does per group of the data set's sensitive attribute; the metrics come from the secure sum of
those counts (``flai.learning.fairness``), so no provider's group counts are revealed.

It runs in the federation's kept session, through the same secure sum as federated
evaluation, and spends its contribution id like any other: a retried or repeated call under
the same id is refused by the providers, so it cannot reveal a second sum over other parties.

All or nothing: per group the counts add up to the model's overall confusion counts, which
the final round's evaluation revealed over its parties. A fairness sum over fewer parties
would give, by subtraction, the counts of those missing; so it runs over exactly the parties
given (the final evaluation's), and a dropout fails it before any sum is opened.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.learning.fairness import (
    FairnessMetrics,
    confusion_layout,
    fairness_from_counts,
    summed_confusions,
)
from flai.learning.models import ModelKind
from flai.settings import get_settings
from tasks.secure_aggregation import RoundFailed, Step, secure_sum_over


@task(cache_policy=NO_CACHE)
def evaluate_fairness(federation: fed.Federation, participants: tuple[str, ...],
                      vector: torch.Tensor, kind: ModelKind, *, contribution_id: str,
                      seed: int = 0,
                      incarnations: Mapping[str, str] | None = None) -> FairnessMetrics:
    """Fairness of the model ``vector`` across the data set's sensitive attribute, over the
    holdouts of exactly ``participants``. ``contribution_id`` is spent: give each evaluation
    its own, e.g. ``f"{task_id}/fairness"``. ``incarnations`` as selected (default: as
    answering now).

    Raises ``SensitiveAttributeUndeclared`` before any provider is asked, when the data set
    declares no sensitive attribute, and ``RoundFailed`` when any participant drops out."""
    schema = federation.dataset.schema
    size = len(confusion_layout(schema))
    staged, failed = fed.call_each(
        federation, participants,
        lambda provider: provider.evaluate_by_group.remote(contribution_id, vector, kind, seed),
        get_settings().provider_call_timeout_s)
    if failed:
        fed.call_each(federation, tuple(staged), lambda p: p.withdraw.remote(contribution_id),
                      get_settings().ping_timeout_s)
        raise RoundFailed(contribution_id, "fairness evaluation needs every party of the final "
                          "evaluation", {name: f"{why} during fairness evaluation"
                                         for name, why in failed.items()})
    summed = secure_sum_over(federation, participants, contribution_id, size,
                             incarnations=incarnations, step=Step("fairness evaluation"),
                             rerun=False)
    return fairness_from_counts(schema.sensitive, summed_confusions(summed.total, schema))
