"""The steps of a federated SQL query: check, charge, stage partials, combine, record.

Providers' partials leave them only inside a secure-combination session, which runs with a
separate triple dealer (``Triples.TTP``) so the aggregator cannot decode what it compares.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from analytics import Disclosure, Plan, plan_query
from contracts import keccak_id
from flai.datasets import Dataset
from flai.lineage import participants_commitment
from flai.mpc.secure_combine import CombinedVectors, CombineSpec
from flai.mpc.session import Triples
from flai.privacy_ledger import BudgetCharge, PrivacyLedger
from flai.settings import get_settings
from tasks.lineage import ledger
from tasks.secure_aggregation import SecureSession, run_secure_session


@dataclass(frozen=True)
class Staged:
    providers: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryLineage:
    sql_hash: str
    tx_hash: str
    block_number: int


def check_query(sql: str, dataset: Dataset, disclosure: Disclosure) -> Plan:
    """Plan at the orchestrator first: an unsafe or unsupported query fails here, unrun."""
    settings = get_settings()
    return plan_query(sql, dataset.schema, disclosure, quantile_bins=settings.fa_quantile_bins,
                      max_rows=settings.fa_max_rows, max_cells=settings.fa_max_cells)


@task(cache_policy=NO_CACHE)
def charge_budget(dataset: Dataset, query_id: str, disclosure: Disclosure) -> BudgetCharge:
    """Spend epsilon before any provider computes; charging a query id twice is a no-op."""
    settings = get_settings()
    return PrivacyLedger(settings.data_dir, settings.epsilon_budget).charge(
        dataset.value, query_id, disclosure.epsilon, disclosure.delta)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def stage_partials(federation: fed.Federation, providers: tuple[str, ...], query_id: str,
                   sql: str, disclosure: Disclosure) -> Staged:
    staged, dropped = fed.call_each(
        federation, providers,
        lambda provider: provider.stage_query.remote(query_id, sql, disclosure),
        get_settings().provider_call_timeout_s)
    if dropped:
        get_run_logger().warning("dropped while computing partials: %s", dropped)
    return Staged(tuple(name for name in providers if name in staged), dropped)


@task(cache_policy=NO_CACHE)
def combine_securely(federation: fed.Federation, providers: tuple[str, ...], query_id: str,
                     spec: CombineSpec) -> SecureSession:
    combined = run_secure_session(
        federation, providers, query_id,
        ready=lambda p: p.can_combine.remote(query_id),
        join=lambda p, session: p.join_secure_combine.remote(session, query_id),
        receive=lambda aggregator, session: aggregator.secure_combine.remote(session, spec),
        triples=Triples.TTP)
    if combined.dropped:
        get_run_logger().warning("dropped during secure combination: %s", combined.dropped)
    return combined


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_query(query_id: str, plan: Plan, participants: tuple[str, ...],
                 combined: CombinedVectors, result: pa.Table,
                 charge: BudgetCharge | None) -> QueryLineage:
    """Record the answered query on chain; a retry with the same content is a no-op there."""
    sql_hash = hashlib.sha256(plan.rewritten.encode()).hexdigest()
    result_hash = hashlib.sha256(result.to_pandas().to_csv(index=False).encode()).hexdigest()
    epsilon_micro = round((plan.disclosure.epsilon or 0.0) * 1_000_000) if charge else 0
    recorded = ledger().record_query(keccak_id(query_id), sql_hash,
                                     participants_commitment(participants),
                                     combined.suppressed, epsilon_micro, result_hash)
    return QueryLineage(sql_hash, recorded.tx_hash, recorded.block_number)
