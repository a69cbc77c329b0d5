"""Resolve every column to a declared column of the schema; refuse the unknown ones.

Table qualifiers (``h.age`` with ``FROM heart AS h``) are checked and dropped, and names are
spelled as the schema spells them. A name that is not a column may still be an output alias,
but only where SQL lets an alias stand: GROUP BY, HAVING and ORDER BY, outside aggregates;
as in DuckDB, ORDER BY prefers an alias, GROUP BY and HAVING prefer a column.
"""

from __future__ import annotations

from sqlglot import exp

from analytics.errors import QueryRefused
from flai.datasets.schema import TabularSchema

_ALIAS_CLAUSES = (exp.Group, exp.Having, exp.Order)


def qualify_columns(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """Unqualified, schema-spelled columns; ``FROM`` without an alias.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> qualify_columns(sqlglot.parse_one("SELECT AVG(h.Age) FROM heart AS h"), SCHEMA).sql()
    'SELECT AVG(age) FROM heart'
    """
    expression = expression.copy()
    table = expression.args["from_"].this
    qualifiers = {schema.name.lower(), table.alias_or_name.lower()}
    names = {name.lower(): name for name in schema.column_names}
    aliases = {projection.alias.lower() for projection in expression.expressions
               if isinstance(projection, exp.Alias)}
    for column in list(expression.find_all(exp.Column)):
        if column.table and column.table.lower() not in qualifiers:
            raise QueryRefused(f"unknown table {column.table!r} in {column.sql('duckdb')}")
        if column.args.get("db") or column.args.get("catalog"):
            raise QueryRefused(f"qualified column {column.sql('duckdb')} is not supported")
        canonical = names.get(column.name.lower())
        if column.name.lower() in aliases and _alias_first(column):
            continue  # ORDER BY prefers an output alias over a column of the same name
        if canonical is not None:
            column.replace(exp.column(canonical))
        elif not (column.name.lower() in aliases and _alias_position(column)):
            raise QueryRefused(f"unknown column {column.name!r}; {schema.name} has "
                               f"{', '.join(schema.column_names)}")
    table.set("alias", None)
    return expression


def _alias_first(column: exp.Column) -> bool:
    return (not column.table and column.find_ancestor(exp.AggFunc) is None
            and column.find_ancestor(exp.Order) is not None)


def _alias_position(column: exp.Column) -> bool:
    """Whether an output alias may stand where ``column`` stands."""
    if column.find_ancestor(exp.AggFunc) is not None:
        return False
    return column.find_ancestor(*_ALIAS_CLAUSES) is not None
