"""The per-data-set privacy budget: every epsilon spent, in a small JSON ledger on disk.

Charges are checked and recorded under an exclusive file lock and written atomically, so
concurrent queries cannot overspend. A charge is keyed by the query's id: charging the same
query again (a retried task) is a no-op, never a second spend. The budget is spent before the
query runs and is not refunded if it fails: its noise may already have been drawn.
Composition is basic (epsilons and deltas add up), which is conservative.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

LEDGER_FILE = "privacy_ledger.json"


class PrivacyBudgetExceeded(RuntimeError):
    """A query's epsilon exceeds what is left of its data set's budget."""

    def __init__(self, dataset: str, requested: float, remaining: float, budget: float) -> None:
        super().__init__(f"query needs epsilon {requested:g} but data set {dataset!r} has "
                         f"{remaining:g} of its {budget:g} left")
        self.dataset, self.requested, self.remaining, self.budget = (
            dataset, requested, remaining, budget)


@dataclass(frozen=True)
class BudgetCharge:
    """The state of one data set's budget after a charge."""

    dataset: str
    query_id: str
    epsilon: float
    delta: float
    spent: float
    remaining: float


class PrivacyLedger:
    """Epsilon spent per data set, under ``directory``, against one ``budget`` per data set.

    >>> ledger = PrivacyLedger(Path(tempfile.mkdtemp()), budget=1.0)
    >>> ledger.charge("heart", "q1", 0.4, 1e-6).remaining
    0.6
    >>> ledger.charge("heart", "q1", 0.4, 1e-6).remaining  # the same query: charged once
    0.6
    >>> ledger.charge("heart", "q2", 0.7, 1e-6)
    Traceback (most recent call last):
    flai.privacy_ledger.PrivacyBudgetExceeded: query needs epsilon 0.7 but data set 'heart' has 0.6 of its 1 left
    """

    def __init__(self, directory: Path, budget: float) -> None:
        self.path = Path(directory) / LEDGER_FILE
        self.budget = budget

    def charge(self, dataset: str, query_id: str, epsilon: float, delta: float) -> BudgetCharge:
        """Record ``epsilon`` for ``query_id``, or raise ``PrivacyBudgetExceeded`` first."""
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        with self._locked() as entries:
            charges = entries.setdefault(dataset, [])
            spent = sum(c["epsilon"] for c in charges)
            if not any(c["query_id"] == query_id for c in charges):
                remaining = self.budget - spent
                if epsilon > remaining + 1e-12:
                    raise PrivacyBudgetExceeded(dataset, epsilon, max(remaining, 0.0), self.budget)
                charges.append({"query_id": query_id, "epsilon": epsilon, "delta": delta,
                                "at": datetime.now(timezone.utc).isoformat()})
                spent += epsilon
            charged = next(c for c in charges if c["query_id"] == query_id)
        return BudgetCharge(dataset, query_id, charged["epsilon"], charged["delta"],
                            round(spent, 12), round(max(self.budget - spent, 0.0), 12))

    def spent(self, dataset: str) -> float:
        with self._locked() as entries:
            return sum(c["epsilon"] for c in entries.get(dataset, []))

    def remaining(self, dataset: str) -> float:
        return max(self.budget - self.spent(dataset), 0.0)

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
