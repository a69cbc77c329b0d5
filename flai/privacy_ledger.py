"""The privacy budget of a data set, counted by Renyi-DP composition of its noisy queries.

Every noisy query is a Gaussian mechanism: noise of standard deviation ``z`` times its L2
sensitivity, ``z`` the *noise multiplier*, calibrated to the query's ``(epsilon, delta)`` by
``dp_accounting`` (the analytic Gaussian mechanism). A ledger composes every query charged so
far with ``dp_accounting``'s Renyi-DP accountant and refuses a query whose addition would
take the composed epsilon, at the policy's ``budget_delta``, past its ``budget_epsilon``.

The chain keeps the same account as one integer per data set. The RDP curve of a Gaussian
with multiplier ``z`` is ``alpha / (2 z**2)``, so composition adds ``1 / z**2``: a query
costs ``ceil(10**6 / z**2)`` micro-units (rounded up, so the chain never undercounts), and
the budget is the largest total for which the accountant still answers within the policy.
The contract only adds and compares, and refuses a charge past that total.

A provider keeps its own ledger next to its data, under an exclusive file lock, written
atomically; a charge is keyed by the query's id, so charging the same query again (a retried
task) is a no-op. The budget is spent before the query runs and is not refunded if it fails.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import dp_accounting
from dp_accounting.rdp import rdp_privacy_accountant

from flai.datasets.policy import DisclosurePolicy

MICRO = 1_000_000


class PrivacyBudgetExceeded(RuntimeError):
    """A query's epsilon does not fit what is left of its data set's budget."""

    def __init__(self, dataset: str, requested: float, remaining: float, budget: float) -> None:
        super().__init__(f"query needs epsilon {requested:g} but data set {dataset!r} has "
                         f"{remaining:.3g} of its {budget:g} left")
        self.dataset, self.requested, self.remaining, self.budget = (
            dataset, requested, remaining, budget)


@dataclass(frozen=True)
class BudgetCharge:
    """The state of one data set's budget after a charge."""

    dataset: str
    query_id: str
    epsilon: float  # of this query, at its own delta
    delta: float
    spent: float  # composed epsilon of every query so far, at the budget's delta
    remaining: float  # budget_epsilon - spent


@lru_cache(maxsize=256)
def noise_multiplier(epsilon: float, delta: float) -> float:
    """The ``z`` making a Gaussian mechanism ``(epsilon, delta)``-DP (analytic calibration).

    >>> round(noise_multiplier(1.0, 1e-5), 2)  # the classic bound would give 4.84
    3.73
    """
    if not (math.isfinite(epsilon) and epsilon > 0 and 0 < delta < 1):
        raise ValueError(f"need a finite epsilon > 0 and 0 < delta < 1, got {epsilon}, {delta}")
    return dp_accounting.get_sigma_gaussian(epsilon, delta)


def composed_epsilon(multipliers: Sequence[float], delta: float) -> float:
    """Epsilon at ``delta`` of Gaussian mechanisms with ``multipliers``, composed (RDP).

    >>> round(composed_epsilon([noise_multiplier(1.0, 1e-6)] * 10, 1e-5), 2)
    3.4
    """
    if not multipliers:
        return 0.0
    accountant = rdp_privacy_accountant.RdpAccountant()
    for z in multipliers:
        accountant.compose(dp_accounting.GaussianDpEvent(z))
    return float(accountant.get_epsilon(delta))


def chain_cost(multiplier: float) -> int:
    """A query's charge on chain: ``1 / z**2`` in micro-units, rounded up.

    >>> chain_cost(4.0)
    62500
    """
    return math.ceil(MICRO / multiplier**2)


def epsilon_of_cost(cost: int, delta: float) -> float:
    """Composed epsilon at ``delta`` of queries whose chain costs add up to ``cost``."""
    return composed_epsilon([math.sqrt(MICRO / cost)], delta) if cost > 0 else 0.0


@lru_cache(maxsize=64)
def chain_budget(policy: DisclosurePolicy) -> int:
    """The largest total cost the accountant admits within ``policy``'s budget."""
    low, high = 0, MICRO
    while epsilon_of_cost(high, policy.budget_delta) <= policy.budget_epsilon:
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        if epsilon_of_cost(middle, policy.budget_delta) <= policy.budget_epsilon:
            low = middle
        else:
            high = middle
    return low


class PrivacyLedger:
    """The queries charged against one data set's budget, in a JSON file at ``path``.

    >>> policy = DisclosurePolicy(budget_epsilon=1.2)
    >>> ledger = PrivacyLedger(Path(tempfile.mkdtemp()) / "ledger.json", "heart", policy)
    >>> round(ledger.charge("q1", 1.0).spent, 2)  # epsilon 1 at delta 1e-6 is 0.95 at 1e-5
    0.95
    >>> round(ledger.charge("q1", 1.0).spent, 2)  # the same query: charged once
    0.95
    >>> ledger.charge("q2", 1.0)
    Traceback (most recent call last):
    flai.privacy_ledger.PrivacyBudgetExceeded: query needs epsilon 1 but data set 'heart' has 0.246 of its 1.2 left
    """

    def __init__(self, path: Path, dataset: str, policy: DisclosurePolicy) -> None:
        self.path, self.dataset, self.policy = Path(path), dataset, policy

    def charge(self, query_id: str, epsilon: float) -> BudgetCharge:
        """Record a query of ``epsilon`` (at the policy's delta), or refuse it first."""
        delta = self.policy.delta
        multiplier = noise_multiplier(epsilon, delta)
        with self._locked() as entries:
            charges = entries.setdefault(self.dataset, [])
            charged = next((c for c in charges if c["query_id"] == query_id), None)
            if charged is None:
                multipliers = [c["multiplier"] for c in charges] + [multiplier]
                if composed_epsilon(multipliers, self.policy.budget_delta) > self.policy.budget_epsilon:
                    raise PrivacyBudgetExceeded(self.dataset, epsilon, self._remaining(charges),
                                                self.policy.budget_epsilon)
                charged = {"query_id": query_id, "epsilon": epsilon, "delta": delta,
                           "multiplier": multiplier, "at": datetime.now(timezone.utc).isoformat()}
                charges.append(charged)
            spent = self.policy.budget_epsilon - self._remaining(charges)
        return BudgetCharge(self.dataset, query_id, charged["epsilon"], charged["delta"],
                            round(spent, 9), round(self.policy.budget_epsilon - spent, 9))

    def spent(self) -> float:
        with self._locked() as entries:
            return self.policy.budget_epsilon - self._remaining(entries.get(self.dataset, []))

    def _remaining(self, charges: list[dict]) -> float:
        spent = composed_epsilon([c["multiplier"] for c in charges], self.policy.budget_delta)
        return max(self.policy.budget_epsilon - spent, 0.0)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, list[dict]]]:
        """The ledger's entries under an exclusive lock; written back atomically on success."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = json.loads(self.path.read_text()) if self.path.exists() else {}
            before = json.dumps(entries, sort_keys=True)
            yield entries
            if json.dumps(entries, sort_keys=True) != before:
                with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False) as tmp:
                    json.dump(entries, tmp, indent=1)
                os.replace(tmp.name, self.path)
