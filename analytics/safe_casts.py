"""Make every CAST a TRY_CAST: a value that does not convert becomes NULL instead of an error.

``check_types`` already refuses the casts a row could make fail (a string to a number, a
number to a narrow integer); this rule is the second lock, so that no cast the planner
accepts can raise on a provider's data and carry a value out in its error text.
"""

from __future__ import annotations

from sqlglot import exp

from flai.datasets.schema import TabularSchema


def safe_casts(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """Every ``CAST`` (and ``::``) as ``TRY_CAST``.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> safe_casts(sqlglot.parse_one("SELECT SUM(CAST(age AS DOUBLE)) FROM heart"), SCHEMA).sql()
    'SELECT SUM(TRY_CAST(age AS DOUBLE)) FROM heart'
    """
    def to_try(node: exp.Expression) -> exp.Expression:
        if type(node) is exp.Cast:
            return exp.TryCast(this=node.this, to=node.to)
        return node

    return expression.transform(to_try)
