"""Federated SQL: check and plan a query into per-provider partial aggregates, and finalise.

Pure functions over sqlglot ASTs; no I/O. The flow is::

    plan = plan_query(sql, schema, policy, epsilon)           # orchestrator and each provider
    partials = run_partials(parquet, schema, plan.partials)   # each provider
    combined = secure_combine(plan.combine, partials)         # every party, MPC
    table = finalise(plan, combined)                          # rank 0
"""

from analytics.errors import QueryRefused
from analytics.finalise import disclosure_report, finalise
from analytics.plan import RULES, Plan, plan_query, release_epsilon, rewrite
from analytics.privacy import DisclosureReport
from analytics.temporal import Temporal

__all__ = [
    "RULES",
    "DisclosureReport",
    "Plan",
    "QueryRefused",
    "Temporal",
    "disclosure_report",
    "finalise",
    "plan_query",
    "release_epsilon",
    "rewrite",
]
