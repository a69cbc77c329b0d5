"""Refuse any query whose result could reveal a row: every output must be aggregated.

An output, HAVING or ORDER BY term may use aggregates, group keys (or expressions of them),
literals and output aliases, and nothing else. WHERE and GROUP BY may not aggregate,
aggregates do not nest, and a query without GROUP BY must aggregate.
"""

from __future__ import annotations

from sqlglot import exp

from analytics.check_functions import AGGREGATES
from analytics.errors import QueryRefused
from flai.datasets.schema import TabularSchema


def check_aggregation(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """Raise ``QueryRefused`` for row-level outputs and misplaced aggregates.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> check_aggregation(sqlglot.parse_one("SELECT age, COUNT(*) FROM heart GROUP BY sex"), SCHEMA)
    Traceback (most recent call last):
    analytics.errors.QueryRefused: output age is row-level: age is neither aggregated nor a GROUP BY key
    """
    for clause, name in (("where", "WHERE"), ("group", "GROUP BY")):
        node = expression.args.get(clause)
        if node is not None and node.find(exp.AggFunc) is not None:
            raise QueryRefused(f"aggregates are not allowed in {name}")
    group = expression.args.get("group")
    keys = list(group.expressions) if group is not None else []
    aliases = {p.alias.lower() for p in expression.expressions if isinstance(p, exp.Alias)}
    # (term, how the refusal names it, output aliases that shadow columns there)
    terms = [(p, f"output {p.alias if isinstance(p, exp.Alias) else p.sql('duckdb')}", set())
             for p in expression.expressions]
    if expression.args.get("having") is not None:
        terms.append((expression.args["having"], "HAVING", set()))
    if expression.args.get("order") is not None:
        terms.append((expression.args["order"], "ORDER BY", aliases))  # ORDER BY prefers aliases
    aggregates = [a for term, _, _ in terms for a in term.find_all(exp.AggFunc)]
    for aggregate in aggregates:
        _check_aggregate(aggregate)
    if not keys and not aggregates:
        raise QueryRefused("without GROUP BY every output must be an aggregate; "
                           "this query would return one row per input row")
    for term, name, shadowing in terms:
        column = _row_level_column(term, keys, schema, shadowing)
        if column is not None:
            raise QueryRefused(f"{name} is row-level: {column} is neither aggregated "
                               "nor a GROUP BY key")
    return expression


def _check_aggregate(aggregate: exp.AggFunc) -> None:
    if type(aggregate) not in AGGREGATES:
        raise QueryRefused(f"aggregate {aggregate.sql_name()} is not supported")
    if aggregate.find_ancestor(exp.AggFunc) is not None:
        raise QueryRefused(f"nested aggregate {aggregate.sql('duckdb')} is not supported")
    if isinstance(aggregate, exp.PercentileCont):
        fraction = aggregate.expression
        if not (isinstance(fraction, exp.Literal) and not fraction.is_string
                and 0 <= float(fraction.this) <= 1):
            raise QueryRefused(f"{aggregate.sql('duckdb')}: the quantile must be a literal in [0, 1]")


def _row_level_column(term: exp.Expression, keys: list[exp.Expression], schema: TabularSchema,
                      aliases: set[str]) -> str | None:
    """A schema column of ``term`` outside every aggregate and group key, if there is one."""
    def hide(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.AggFunc) or node in keys:
            return exp.Null()
        return node

    for column in term.copy().transform(hide).find_all(exp.Column):
        if column.name in schema.column_names and column.name.lower() not in aliases:
            return column.name
    return None
