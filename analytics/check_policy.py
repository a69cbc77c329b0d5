"""Hold a checked query against the data set's disclosure policy, as its owners wrote it.

Each column may be allowed in WHERE, in GROUP BY and inside aggregates separately, and each
aggregate family may be allowed or not. The same check runs at the orchestrator (to refuse
early) and at every provider, on its own copy of the policy (which is what protects it).
"""

from __future__ import annotations

from sqlglot import exp

from analytics.aggregates import Kind, kind_of
from analytics.errors import QueryRefused
from flai.datasets.policy import Aggregate, DisclosurePolicy

FAMILY = {
    Kind.COUNT: Aggregate.COUNT, Kind.SUM: Aggregate.SUM, Kind.AVG: Aggregate.AVG,
    Kind.VAR_POP: Aggregate.VARIANCE, Kind.VAR_SAMP: Aggregate.VARIANCE,
    Kind.STDDEV_POP: Aggregate.VARIANCE, Kind.STDDEV_SAMP: Aggregate.VARIANCE,
    Kind.COVAR_POP: Aggregate.COVARIANCE, Kind.COVAR_SAMP: Aggregate.COVARIANCE,
    Kind.CORR: Aggregate.COVARIANCE, Kind.MIN: Aggregate.MIN_MAX, Kind.MAX: Aggregate.MIN_MAX,
    Kind.QUANTILE: Aggregate.QUANTILE,
}


def check_policy(select: exp.Select, policy: DisclosurePolicy) -> exp.Select:
    """Raise ``QueryRefused`` where ``select`` uses a column or aggregate the policy forbids.

    >>> import sqlglot
    >>> from flai.datasets.policy import ColumnUse
    >>> policy = DisclosurePolicy(columns=(ColumnUse("age", group=False),))
    >>> check_policy(sqlglot.parse_one("SELECT age, COUNT(*) FROM heart GROUP BY age"), policy)
    Traceback (most recent call last):
    analytics.errors.QueryRefused: the data set's policy does not allow age in GROUP BY
    """
    for aggregate in select.find_all(exp.AggFunc):
        family = FAMILY[kind_of(aggregate)]
        if family not in policy.aggregates:
            raise QueryRefused(f"the data set's policy does not allow {family.value.upper()} "
                               f"aggregates ({aggregate.sql('duckdb')})")
        for column in aggregate.find_all(exp.Column):
            if not policy.use(column.name).aggregate:
                raise QueryRefused(f"the data set's policy does not allow {column.name} "
                                   "inside aggregates")
    clauses = (("where", "filter", "WHERE"), ("group", "group", "GROUP BY"))
    for clause, use, name in clauses:
        node = select.args.get(clause)
        for column in node.find_all(exp.Column) if node is not None else []:
            if not getattr(policy.use(column.name), use):
                raise QueryRefused(f"the data set's policy does not allow {column.name} in {name}")
    return select
