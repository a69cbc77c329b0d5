"""Turn GROUP BY ordinals, output aliases and ALL into the expressions they stand for.

After this rule a group key is always an expression over columns, which is what its domain
is derived from (``analytics.domains``) and what finalise matches outputs against.
"""

from __future__ import annotations

from sqlglot import exp

from analytics.errors import QueryRefused
from flai.datasets.schema import TabularSchema

_GROUP_PARTS = {"expressions", "all"}


def expand_group_by(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """GROUP BY holds expressions only, each once.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> query = "SELECT FLOOR(age / 10) AS decade, COUNT(*) FROM heart GROUP BY decade, 1"
    >>> expand_group_by(sqlglot.parse_one(query), SCHEMA).sql()
    'SELECT FLOOR(age / 10) AS decade, COUNT(*) FROM heart GROUP BY FLOOR(age / 10)'
    """
    group = expression.args.get("group")
    if group is None:
        return expression
    extra = [part.upper() for part, value in group.args.items()
             if part not in _GROUP_PARTS and value not in (None, False, [])]
    extra += [key.key.upper() for key in group.expressions
              if isinstance(key, (exp.Rollup, exp.Cube, exp.GroupingSets))]
    if extra:
        raise QueryRefused(f"GROUP BY {extra[0]} is not supported")
    expression = expression.copy()
    projections = expression.expressions
    if group.args.get("all"):
        keys = [p.unalias() for p in projections
                if p.find(exp.AggFunc) is None and p.find(exp.Column) is not None]
    else:
        keys = [_resolve(key, projections, schema) for key in group.expressions]
    unique: list[exp.Expression] = []
    for key in keys:
        if key not in unique:
            unique.append(key)
    expression.set("group", exp.Group(expressions=[key.copy() for key in unique]))
    return expression


def _resolve(key: exp.Expression, projections: list[exp.Expression],
             schema: TabularSchema) -> exp.Expression:
    if isinstance(key, exp.Literal) and not key.is_string:
        position = int(key.this)
        if not 1 <= position <= len(projections):
            raise QueryRefused(f"GROUP BY {position}: the query has {len(projections)} outputs")
        return projections[position - 1].unalias()
    if isinstance(key, exp.Column) and key.name not in schema.column_names:
        for projection in projections:
            if isinstance(projection, exp.Alias) and projection.alias.lower() == key.name.lower():
                return projection.this
    return key
