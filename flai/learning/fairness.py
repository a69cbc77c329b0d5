"""Fairness of a model across a sensitive attribute, from additive group-wise confusion counts.

The groups are the declared domain of the data set's sensitive column (``TabularSchema.
sensitive``: sex, for heart and census). Each provider contributes, per group ``g`` in domain
order, ``[tp_g, fp_g, tn_g, fn_g]`` of its holdout at the decision threshold federated
evaluation uses (``local.evaluation_counts``); a row whose attribute is missing is in no group.
The sum over providers gives, with ``n_g = tp_g + fp_g + tn_g + fn_g``:

1. positive rate ``PR_g = P(y_hat = 1 | A = g) = (tp_g + fp_g) / n_g``
2. true positive rate ``TPR_g = P(y_hat = 1 | A = g, y = 1) = tp_g / (tp_g + fn_g)``
3. demographic-parity difference ``max_g PR_g - min_g PR_g``
4. equal-opportunity difference ``max_g TPR_g - min_g TPR_g``

With two groups, 3 and 4 are ``|PR_a - PR_b|`` and ``|TPR_a - TPR_b|``; with more, the largest
gap between any two groups (fairlearn's ``between_groups``).

Convention for rates that do not exist: a group with no rows has no PR, a group with no
positive labels no TPR (``None`` for that group). A difference is taken over the groups whose
rate exists, and is ``None`` (not measurable, never 0) when fewer than two have one: with two
groups, one without positives leaves equal opportunity undefined.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from flai.datasets.schema import Categorical, TabularSchema
from flai.learning import local
from flai.learning.metrics import count_layout

CONFUSION = ("tp", "fp", "tn", "fn")
_CONFUSION_AT = [count_layout().index(name) for name in CONFUSION]


class SensitiveAttributeUndeclared(ValueError):
    """A data set declares no sensitive attribute fairness could be measured across."""

    def __init__(self, schema: str, problem: str) -> None:
        super().__init__(f"{schema}: {problem}")
        self.schema = schema
        self.problem = problem


def sensitive_attribute(schema: TabularSchema) -> Categorical:
    """The column fairness is measured across; its domain is the groups.

    >>> from flai.datasets.heart import SCHEMA
    >>> sensitive_attribute(SCHEMA).domain
    ('female', 'male')
    """
    if schema.sensitive is None:
        raise SensitiveAttributeUndeclared(schema.name, "no sensitive attribute is declared")
    column = schema.column(schema.sensitive)
    if not isinstance(column, Categorical):
        raise SensitiveAttributeUndeclared(
            schema.name, f"sensitive attribute {schema.sensitive!r} is not categorical")
    return column


def confusion_layout(schema: TabularSchema) -> tuple[str, ...]:
    """The names of a group-count vector's entries, group by group in domain order.

    >>> from flai.datasets.heart import SCHEMA
    >>> confusion_layout(SCHEMA)
    ('female/tp', 'female/fp', 'female/tn', 'female/fn', 'male/tp', 'male/fp', 'male/tn', 'male/fn')
    """
    return tuple(f"{group}/{count}" for group in sensitive_attribute(schema).domain
                 for count in CONFUSION)


def group_of_rows(frame: pd.DataFrame, schema: TabularSchema) -> torch.Tensor:
    """Each row's group: its index in the attribute's domain, -1 when missing or undeclared.

    Read from the raw column, so it does not depend on how the model's features encode it.

    >>> from flai.datasets.heart import SCHEMA
    >>> group_of_rows(pd.DataFrame({"sex": ["male", None, "female"]}), SCHEMA).tolist()
    [1, -1, 0]
    """
    column = sensitive_attribute(schema)
    codes = pd.Categorical(frame[column.name], categories=column.domain).codes
    return torch.from_numpy(np.asarray(codes, dtype=np.int64))


def group_counts(model: nn.Module, X: torch.Tensor, y: torch.Tensor, groups: torch.Tensor,
                 group_count: int) -> torch.Tensor:
    """``[tp, fp, tn, fn]`` per group (float64, ``4 * group_count``): additive, safe to sum
    securely. Counted by ``local.evaluation_counts`` on each group's rows, so the threshold is
    federated evaluation's, and the groups' counts add up to its counts over grouped rows."""
    return torch.cat([local.evaluation_counts(model, X[groups == g], y[groups == g])[_CONFUSION_AT]
                      for g in range(group_count)])


@dataclass(frozen=True)
class GroupConfusion:
    """One group's summed confusion counts."""

    group: str
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def size(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def positive_rate(self) -> float | None:
        """``P(y_hat = 1 | A = group)``; None for a group with no rows."""
        return (self.tp + self.fp) / self.size if self.size else None

    @property
    def true_positive_rate(self) -> float | None:
        """``P(y_hat = 1 | A = group, y = 1)``; None for a group with no positive labels."""
        positives = self.tp + self.fn
        return self.tp / positives if positives else None


def summed_confusions(total: torch.Tensor, schema: TabularSchema) -> tuple[GroupConfusion, ...]:
    """The groups' confusions from a secure sum laid out as ``confusion_layout(schema)``.

    Counts are whole numbers on the fixed-point grid, so the sum decodes exactly; rounding only
    drops the float type.

    >>> from flai.datasets.heart import SCHEMA
    >>> summed_confusions(torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8]), SCHEMA)[1]
    GroupConfusion(group='male', tp=5, fp=6, tn=7, fn=8)
    """
    counts = [round(value) for value in total.tolist()]
    return tuple(GroupConfusion(group, *counts[4 * g : 4 * g + 4])
                 for g, group in enumerate(sensitive_attribute(schema).domain))


@dataclass(frozen=True)
class FairnessMetrics:
    """A model's fairness across ``attribute``; per-group values keyed by group, in domain
    order. A rate or difference that does not exist is None (see the module's convention)."""

    attribute: str
    group_sizes: dict[str, int]
    positive_rates: dict[str, float | None]
    true_positive_rates: dict[str, float | None]
    demographic_parity_difference: float | None
    equal_opportunity_difference: float | None


def fairness_from_counts(attribute: str,
                         confusions: Sequence[GroupConfusion]) -> FairnessMetrics:
    """Fairness from summed group confusions.

    >>> f = fairness_from_counts("sex", [GroupConfusion("female", 2, 1, 5, 2),
    ...                                  GroupConfusion("male", 6, 2, 10, 2)])
    >>> round(f.demographic_parity_difference, 12), f.equal_opportunity_difference
    (0.1, 0.25)
    """
    return _from_rates(attribute,
                       {c.group: c.size for c in confusions},
                       {c.group: c.positive_rate for c in confusions},
                       {c.group: c.true_positive_rate for c in confusions})


def central_fairness(attribute: str, groups: Sequence[str], labels: np.ndarray,
                     predicted: np.ndarray, row_groups: Sequence[str | None]) -> FairnessMetrics:
    """The reference: fairness from pooled per-row labels and 0/1 predictions, the rates by
    numpy and scikit-learn (``recall_score`` is the TPR), not by counting as above. Only
    tests and benchmarks pool rows like this."""
    # Imported here: providers import this module and never need scikit-learn.
    from sklearn.metrics import recall_score

    attribute_of = np.asarray(row_groups, dtype=object)
    sizes, positive_rates, true_positive_rates = {}, {}, {}
    for group in groups:
        rows = attribute_of == group
        sizes[group] = int(rows.sum())
        positive_rates[group] = true_positive_rates[group] = None
        if rows.any():  # scikit-learn refuses an empty group rather than saying "no rate"
            positive_rates[group] = float(predicted[rows].mean())
            recall = recall_score(labels[rows], predicted[rows], zero_division=np.nan)
            true_positive_rates[group] = None if np.isnan(recall) else float(recall)
    return _from_rates(attribute, sizes, positive_rates, true_positive_rates)


def _from_rates(attribute: str, sizes: dict[str, int], positive_rates: dict[str, float | None],
                true_positive_rates: dict[str, float | None]) -> FairnessMetrics:
    return FairnessMetrics(attribute, sizes, positive_rates, true_positive_rates,
                           _largest_gap(positive_rates.values()),
                           _largest_gap(true_positive_rates.values()))


def _largest_gap(rates: Iterable[float | None]) -> float | None:
    """``max - min`` over the rates that exist; None with fewer than two.

    >>> _largest_gap([0.25, None, 0.75]), _largest_gap([0.5, None])
    (0.5, None)
    """
    present = [rate for rate in rates if rate is not None]
    return max(present) - min(present) if len(present) >= 2 else None
