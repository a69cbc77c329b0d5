"""Clip every numeric column inside an aggregate to its declared ``[low, high]``.

Clipping is what makes the declared bounds true of the data actually aggregated: the
fixed-point range of the secure sum, the neutral MIN/MAX values and the sensitivity of DP
noise all rely on it. NULLs stay NULL (DuckDB's LEAST/GREATEST would replace them), so a
nullable column gets a CASE around the clip. Group keys and WHERE are not clipped.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from analytics.domains import sql_literal
from flai.datasets.schema import Numeric, TabularSchema


def clip_to_bounds(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """``SUM(age)`` becomes ``SUM(LEAST(GREATEST(age, 18), 100))``; COUNT is left alone.

    >>> from flai.datasets.heart import SCHEMA
    >>> clip_to_bounds(sqlglot.parse_one("SELECT SUM(age) AS s FROM heart"), SCHEMA).sql()
    'SELECT SUM(LEAST(GREATEST(age, 18), 100)) AS s FROM heart'
    """
    expression = expression.copy()
    for aggregate in list(expression.find_all(exp.AggFunc)):
        if isinstance(aggregate, exp.Count):
            continue
        arguments = [aggregate.this]
        if isinstance(aggregate, (exp.CovarPop, exp.CovarSamp, exp.Corr)):
            arguments.append(aggregate.expression)
        for argument in arguments:
            for column in list(argument.find_all(exp.Column)):
                declared = schema.column(column.name)
                if isinstance(declared, Numeric):
                    column.replace(_clip(column.name, declared))
    return expression


def _clip(name: str, column: Numeric) -> exp.Expression:
    clipped = f"LEAST(GREATEST({name}, {sql_literal(float(column.low))}), {sql_literal(float(column.high))})"
    if column.max_null_fraction > 0:
        clipped = f"CASE WHEN {name} IS NULL THEN NULL ELSE {clipped} END"
    return sqlglot.parse_one(clipped, read="duckdb")
