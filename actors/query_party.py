"""The provider's side of a federated SQL query.

A provider plans the analyst's SQL itself, under its own copy of the data set's disclosure
policy (it never runs partial SQL handed to it), charges its own privacy ledger, computes the
partial aggregates over its own partition in a locked DuckDB, and lets them out only inside
a secure-combination session whose parties all derived the same plan.

Nothing data-dependent leaves a provider except shares: every answer is a fixed, typed
value (``QueryStaged``, a ``ProviderRefusal``), never an error's text, which could quote a
row. The planner already refuses expressions that can fail on data; this is the second lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from flai.mpc.session import MpcSession, run_in_session
from flai.query_types import CombineSpec, PartialVectors

# The planner (sqlglot, and dp_accounting with scipy through the ledger) and DuckDB are
# imported by the first query, not with every provider: most provider processes only train.
if TYPE_CHECKING:
    from flai.sql_engine import SqlEngine

LEDGER_FILE = "privacy-ledger.json"


class ProviderRefusal(str, Enum):
    """Why a provider will not take part in a query; the only thing it says about it."""

    POLICY_MISMATCH = "a provider holds a different disclosure policy for this data set"
    REFUSED_BY_POLICY = "a provider's disclosure policy refuses the query"
    BUDGET_SPENT = "the data set's privacy budget at a provider does not cover the query"
    COULD_NOT_EVALUATE = "a provider could not evaluate the query"


@dataclass(frozen=True)
class QueryStaged:
    """All a provider says about a query before the session: ready with this plan, or why not."""

    provider: str
    query_id: str
    plan_digest: str | None
    refusal: ProviderRefusal | None = None
    epsilon_spent: float | None = None  # by the data set at this provider, this query included


class QuerySessionRefused(RuntimeError):
    """A session for a query this provider did not stage, or staged under another plan."""


class QueryParty:
    """Mixed into ``Provider``, which supplies ``name``, ``dataset`` and ``data_file``."""

    def __init__(self) -> None:
        self._query_partials: dict[str, tuple[CombineSpec, PartialVectors]] = {}
        self._queries_combined: set[str] = set()
        self._engine: SqlEngine | None = None

    def stage_query(self, query_id: str, sql: str, epsilon: float | None,
                    policy_digest: str) -> QueryStaged:
        """Plan, charge and compute ``sql``'s partials, to be combined once under ``query_id``."""
        from analytics import QueryRefused, plan_query
        from flai.privacy_ledger import PrivacyBudgetExceeded, PrivacyLedger

        policy = self.dataset.policy
        if policy_digest != policy.digest:
            return self._refuse(query_id, ProviderRefusal.POLICY_MISMATCH)
        try:
            plan = plan_query(sql, self.dataset.schema, policy, epsilon)
        except QueryRefused:
            return self._refuse(query_id, ProviderRefusal.REFUSED_BY_POLICY)
        spent = None
        if plan.epsilon is not None:
            ledger = PrivacyLedger(self.data_file.parent / LEDGER_FILE, self.dataset.value, policy)
            try:
                spent = ledger.charge(query_id, plan.epsilon).spent
            except PrivacyBudgetExceeded:
                return self._refuse(query_id, ProviderRefusal.BUDGET_SPENT)
        try:
            partials = self._sql_engine().run(plan.partials)
        except Exception:  # noqa: BLE001 - its text may quote a row: say only that it failed
            return self._refuse(query_id, ProviderRefusal.COULD_NOT_EVALUATE)
        self._query_partials[query_id] = (plan.combine, partials)
        return QueryStaged(self.name, query_id, plan.digest, epsilon_spent=spent)

    def can_combine(self, query_id: str) -> bool:
        return query_id in self._query_partials and query_id not in self._queries_combined

    def join_secure_combine(self, session: MpcSession, query_id: str, plan_digest: str) -> None:
        """Contribute staged partials to ``session`` once; returns nothing, by design.

        The combination itself checks that every party derived the same plan before any
        share exists. A failed session spends the partials too: a query is answered once.
        """
        from flai.mpc.secure_combine import secure_combine  # loads torch: only where it runs

        if not self.can_combine(query_id) or self._query_partials[query_id][0].digest.hex() != plan_digest:
            raise QuerySessionRefused(f"{self.name}: no uncombined query {query_id} with that plan")
        spec, partials = self._query_partials.pop(query_id)
        self._queries_combined.add(query_id)
        try:
            run_in_session(session, self.name, lambda rank: secure_combine(spec, partials))
        except Exception:  # noqa: BLE001 - a fixed message; the cause stays here
            raise QuerySessionRefused(f"{self.name}: the secure combination of {query_id} failed") from None

    def _refuse(self, query_id: str, refusal: ProviderRefusal) -> QueryStaged:
        return QueryStaged(self.name, query_id, None, refusal)

    def _sql_engine(self) -> SqlEngine:
        """One locked engine over the partition, opened on the first query."""
        if self._engine is None:
            from flai.sql_engine import SqlEngine

            self._engine = SqlEngine(self.data_file, self.dataset.schema, threads=1)
        return self._engine
