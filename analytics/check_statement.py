"""Accept exactly one plain SELECT over the registered table; refuse every other statement.

An allow-list of SELECT clauses: projections, FROM one table, WHERE, GROUP BY, HAVING,
ORDER BY, LIMIT, OFFSET. Anything else (CTEs, joins, DISTINCT, windows, QUALIFY, sampling,
set operations, COPY/ATTACH/PRAGMA/SET/INSTALL/LOAD) is refused, as is ``SELECT *``.
"""

from __future__ import annotations

from sqlglot import exp

from analytics.errors import QueryRefused
from flai.datasets.schema import TabularSchema

_CLAUSES = {"expressions", "from_", "where", "group", "having", "order", "limit", "offset"}
_TABLE_PARTS = {"this", "alias"}


def check_statement(expression: exp.Expression, schema: TabularSchema) -> exp.Expression:
    """Raise ``QueryRefused`` unless ``expression`` is one SELECT over ``schema.name``.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> check_statement(sqlglot.parse_one("SELECT COUNT(*) FROM heart"), SCHEMA).sql()
    'SELECT COUNT(*) FROM heart'
    >>> check_statement(sqlglot.parse_one("SELECT * FROM heart"), SCHEMA)
    Traceback (most recent call last):
    analytics.errors.QueryRefused: SELECT * would reveal rows; ask for aggregates
    """
    if not isinstance(expression, exp.Select):
        raise QueryRefused(f"only SELECT queries are accepted, not {expression.key.upper()}")
    if expression.args.get("with_") is not None:
        raise QueryRefused("WITH is not supported in federated SQL: no CTEs")
    for node in expression.walk():
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise QueryRefused("SELECT * would reveal rows; ask for aggregates")
        if node is not expression and isinstance(node, (exp.Query, exp.Subquery)):
            raise QueryRefused("subqueries are not supported in federated SQL")
        if isinstance(node, exp.Join):
            raise QueryRefused("joins are not supported: each query reads one registered table")
    for clause, value in expression.args.items():
        if clause not in _CLAUSES and value not in (None, False, []):
            raise QueryRefused(f"{clause.rstrip('_').upper()} is not supported in federated SQL")
    _check_from(expression, schema)
    return expression


def _check_from(select: exp.Select, schema: TabularSchema) -> None:
    source = select.args.get("from_")
    if source is None:
        raise QueryRefused(f"the query must read the registered table {schema.name}")
    table = source.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise QueryRefused("table functions and file reads are not allowed; "
                           f"read the registered table {schema.name}")
    extra = [part for part, value in table.args.items()
             if part not in _TABLE_PARTS and value not in (None, False, [])]
    if extra:
        raise QueryRefused(f"{extra[0].upper()} on the table is not supported "
                           "(no schema or catalog qualifiers, sampling or hints)")
    if table.name.lower() != schema.name.lower():
        raise QueryRefused(f"unknown table {table.name!r}; this data set is {schema.name!r}")
