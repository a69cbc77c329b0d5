"""The provider's side of a federated SQL query.

A provider plans the analyst's SQL itself against its own schema (it never runs partial SQL
handed to it), computes the partial aggregates over its own partition in a locked DuckDB, and
lets them out only inside a secure-combination session.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics import Disclosure, plan_query
from flai.mpc.secure_combine import CombineSpec, PartialVectors, secure_combine
from flai.mpc.session import MpcSession, run_in_session
from flai.settings import get_settings
from flai.sql_engine import SqlEngine


@dataclass(frozen=True)
class QueryStaged:
    """All a provider says about a query before the session: that it is ready. No counts."""

    provider: str
    query_id: str


class QueryRefusedByProvider(RuntimeError):
    """A staged query is unknown here, or was already combined once."""


class QueryParty:
    """Mixed into ``Provider``, which supplies ``name``, ``dataset`` and ``data_file``."""

    def __init__(self) -> None:
        self._query_partials: dict[str, tuple[CombineSpec, PartialVectors]] = {}
        self._queries_combined: set[str] = set()
        self._engine: SqlEngine | None = None

    def stage_query(self, query_id: str, sql: str, disclosure: Disclosure) -> QueryStaged:
        settings = get_settings()
        plan = plan_query(sql, self.dataset.schema, disclosure,
                          quantile_bins=settings.fa_quantile_bins, max_rows=settings.fa_max_rows,
                          max_cells=settings.fa_max_cells)
        partials = self._sql_engine().run(plan.partials)
        self._query_partials[query_id] = (plan.combine, partials)
        return QueryStaged(self.name, query_id)

    def can_combine(self, query_id: str) -> bool:
        return query_id in self._query_partials and query_id not in self._queries_combined

    def join_secure_combine(self, session: MpcSession, query_id: str) -> None:
        """Contribute staged partials to ``session`` once; returns nothing, by design."""
        if not self.can_combine(query_id):
            raise QueryRefusedByProvider(f"{self.name}: no uncombined query {query_id}")
        spec, partials = self._query_partials[query_id]
        run_in_session(session, self.name, lambda rank: secure_combine(spec, partials))
        self._queries_combined.add(query_id)
        del self._query_partials[query_id]

    def _sql_engine(self) -> SqlEngine:
        """One locked engine over the partition, opened on the first query."""
        if self._engine is None:
            self._engine = SqlEngine(self.data_file, self.dataset.schema, threads=1)
        return self._engine
