"""A federated SQL query as a DAG: check, gate, charge, compute locally, combine, release."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from actors import federation as fed
from analytics import DisclosureReport, disclosure_report, finalise
from flai.datasets import Dataset, partitioning_for
from flai.reporting import artifact_key
from tasks.fa import (
    charge_budget,
    check_query,
    combine_securely,
    record_query,
    register_policy,
    spent_overall,
    stage_partials,
)
from tasks.quality import check_quality
from tasks.selection import select_participants


@dataclass(frozen=True)
class QueryResult:
    table: pa.Table
    disclosure: DisclosureReport
    participants: tuple[str, ...]
    dropped: dict[str, str]
    tx_hash: str
    seconds: float = field(default=0.0)


@flow(name="fa-query", flow_run_name="query-{federation.name}")
def fa_query(federation: fed.Federation, sql: str, epsilon: float | None = None) -> QueryResult:
    """Answer ``sql`` under the data set's disclosure policy; ``epsilon`` (None: the
    policy's default) must lie in the policy's range, and DP cannot be switched off."""
    started = time.perf_counter()
    # Refuse unsafe, unsupported or out-of-policy SQL before anything runs anywhere.
    plan = check_query(sql, federation.dataset, epsilon)
    query_id = f"{federation.name}/query/{flow_run.id}"
    register_policy(federation.dataset)
    # Who is here, and whose data passes its quality gate.
    selection = select_participants(federation)
    gate = check_quality(federation, selection.participants)
    # Spend the privacy budget on chain before any provider computes (refused past it).
    charge = charge_budget(federation.dataset, query_id, plan) if plan.epsilon is not None else None
    # Each provider plans, charges and computes under its own policy; one session combines.
    staged = stage_partials(federation, gate.passed, query_id, sql, plan)
    if charge is not None:
        charge = spent_overall(charge, staged, federation.dataset.policy.budget_epsilon)
    combined = combine_securely(federation, staged.providers, query_id, plan)
    # Release: finalise the small, disclosure-controlled result; record it.
    table = finalise(plan, combined.received)
    report = disclosure_report(plan, combined.received, charge)
    lineage = record_query(query_id, plan, combined.parties, combined.received, table)
    _attach(federation, table, report, lineage.tx_hash)
    return QueryResult(table, report, combined.parties, selection.dropped | gate.dropped,
                       lineage.tx_hash, time.perf_counter() - started)


def federated_query(sql: str, dataset: Dataset = Dataset.HEART,
                    epsilon: float | None = None) -> QueryResult:
    """Ask the demo federation of ``dataset`` one query (its partitions written if missing),
    e.g. ``federated_query("SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex").table``.

    The query is planned first, so a refusal costs nothing and starts nothing."""
    check_query(sql, dataset, epsilon)
    federation = fed.federation_for(dataset, partitioning_for(dataset))
    fed.start(federation)
    return fa_query(federation, sql, epsilon)


def _attach(federation: fed.Federation, table: pa.Table, report: DisclosureReport,
            tx_hash: str) -> None:
    key = artifact_key("fa-query", federation.name)
    create_table_artifact(table.to_pylist(), key=key, description=f"Result; lineage tx `{tx_hash}`")
    lines = [f"| {name} | {value} |" for name, value in report.__dict__.items()]
    create_markdown_artifact("\n".join(["| disclosure | value |", "|---|---|", *lines]),
                             key=key + "-disclosure", description="What the release disclosed")
