"""The steps of a federated SQL query: check, register, charge, stage partials, combine, record.

The data set's disclosure policy is the owners': the orchestrator plans under its copy to
refuse early, registers its digest on chain (once; a different policy under the same data
set is refused), and charges the query's privacy cost there before any provider computes;
every provider then plans and charges again under its own copy and refuses what breaks it.
Providers' partials leave them only inside one secure-combination session, with a separate
triple dealer (``Triples.TTP``) so the aggregator cannot decode what it compares. A query
that any provider refuses or cannot evaluate fails whole: it is never answered by the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from actors.query_party import ProviderRefusal, QueryStaged
from analytics import Plan, QueryRefused, plan_query
from contracts import LedgerBudgetExceededError, LedgerConflictError, keccak_id
from flai.datasets import Dataset
from flai.lineage import participants_commitment
from flai.query_types import CombinedVectors
from flai.privacy_ledger import (
    BudgetCharge,
    PrivacyBudgetExceeded,
    chain_budget,
    chain_cost,
    epsilon_of_cost,
    noise_multiplier,
)
from flai.settings import get_settings
from tasks.chain import ledger
from tasks.secure_aggregation import RoundFailed, SecureSession, run_secure_session


class QueryFailed(RuntimeError):
    """The federation could not answer; nothing was released. ``reasons`` are fixed texts."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        super().__init__("; ".join(reasons) + "; nothing was released")
        self.reasons = reasons


@dataclass(frozen=True)
class Staged:
    providers: tuple[str, ...]
    epsilon_spent: float | None  # the most any provider's own ledger has spent, this query included


@dataclass(frozen=True)
class QueryLineage:
    sql_hash: str
    tx_hash: str
    block_number: int


def check_query(sql: str, dataset: Dataset, epsilon: float | None) -> Plan:
    """Plan under the registered policy first: an unsafe query fails here, unrun."""
    return plan_query(sql, dataset.schema, dataset.policy, epsilon)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def register_policy(dataset: Dataset) -> None:
    """Record the policy's digest and budget on chain (a no-op once done); refuse another."""
    policy = dataset.policy
    try:
        ledger().register_dataset(keccak_id(dataset.value), policy.digest, chain_budget(policy))
    except LedgerConflictError:
        raise QueryRefused(f"the chain holds a different disclosure policy for {dataset.value}; "
                           "the data set must be registered again by its owners") from None


@task(cache_policy=NO_CACHE)
def charge_budget(dataset: Dataset, query_id: str, plan: Plan) -> BudgetCharge:
    """Spend the query's privacy cost on chain before any provider computes; a retry of the
    same query is a no-op there, never a second spend."""
    policy, dataset_id = dataset.policy, keccak_id(dataset.value)
    chain = ledger()
    try:
        chain.charge_budget(dataset_id, keccak_id(query_id),
                            chain_cost(noise_multiplier(plan.epsilon, policy.delta)))
    except LedgerBudgetExceededError:
        left = epsilon_of_cost(chain.get_dataset(dataset_id).spent, policy.budget_delta)
        raise PrivacyBudgetExceeded(dataset.value, plan.epsilon,
                                    max(policy.budget_epsilon - left, 0.0), policy.budget_epsilon) from None
    spent = epsilon_of_cost(chain.get_dataset(dataset_id).spent, policy.budget_delta)
    return BudgetCharge(dataset.value, query_id, plan.epsilon, policy.delta, round(spent, 9),
                        round(max(policy.budget_epsilon - spent, 0.0), 9))


@task(cache_policy=NO_CACHE)
def stage_partials(federation: fed.Federation, providers: tuple[str, ...], query_id: str,
                   sql: str, plan: Plan) -> Staged:
    """Every provider plans, charges and computes itself; all must agree on the plan."""
    policy_digest = federation.dataset.policy.digest
    staged, lost = fed.call_each(
        federation, providers,
        lambda provider: provider.stage_query.remote(query_id, sql, plan.epsilon, policy_digest),
        get_settings().provider_call_timeout_s)
    reasons = {answer.refusal.value for answer in staged.values() if answer.refusal is not None}
    if lost:
        reasons.add(ProviderRefusal.COULD_NOT_EVALUATE.value)
    if any(_derived_another_plan(answer, plan) for answer in staged.values()):
        reasons.add("the providers derived a different plan")
    if reasons:
        raise QueryFailed(tuple(sorted(reasons)))
    spent = [answer.epsilon_spent for answer in staged.values() if answer.epsilon_spent is not None]
    return Staged(providers, max(spent, default=None))


def _derived_another_plan(answer: QueryStaged, plan: Plan) -> bool:
    return answer.refusal is None and answer.plan_digest != plan.digest


def spent_overall(charge: BudgetCharge, staged: Staged, budget: float) -> BudgetCharge:
    """The charge as the strictest ledger counts it: the chain's, or a provider's own (which
    outlives an embedded chain that started afresh with this process)."""
    spent = max(charge.spent, staged.epsilon_spent or 0.0)
    return replace(charge, spent=spent, remaining=round(max(budget - spent, 0.0), 9))


@task(cache_policy=NO_CACHE)
def combine_securely(federation: fed.Federation, providers: tuple[str, ...], query_id: str,
                     plan: Plan) -> SecureSession:
    """One session; a party that drops out fails the query (it is never re-run on fewer)."""
    try:
        return run_secure_session(
            federation, providers, query_id,
            ready=lambda p: p.can_combine.remote(query_id),
            join=lambda p, session: p.join_secure_combine.remote(session, query_id, plan.digest),
            receive=lambda aggregator, session: aggregator.secure_combine.remote(session, plan.combine),
            rerun=False)
    except RoundFailed:
        raise QueryFailed(("a party dropped out of the secure combination",)) from None


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_query(query_id: str, plan: Plan, participants: tuple[str, ...],
                 combined: CombinedVectors, result: pa.Table) -> QueryLineage:
    """Record the answered query on chain; a retry with the same content is a no-op there."""
    sql_hash = hashlib.sha256(plan.rewritten.encode()).hexdigest()
    result_hash = hashlib.sha256(result.to_pandas().to_csv(index=False).encode()).hexdigest()
    epsilon_micro = round((plan.epsilon or 0.0) * 1_000_000)
    recorded = ledger().record_query(keccak_id(query_id), sql_hash,
                                     participants_commitment(participants),
                                     combined.suppressed, epsilon_micro, result_hash)
    return QueryLineage(sql_hash, recorded.tx_hash, recorded.block_number)
