"""The finite, public domain of every GROUP BY key, so each provider's vector has one shape.

A provider must not reveal which groups it has, so every provider returns one entry per
group of the whole declared domain, present or not. The domain of a key comes from the
schema: a categorical column's declared values, an integral numeric column's integers
(the provider rounds such columns at load, so no row falls between them), the literal results of a CASE, ``FLOOR``/``CEIL`` of a bounded expression, the
years/quarters/months of a bounded date, and a literal shift or scale of any of these.
A key whose domain cannot be derived is refused.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from datetime import date, datetime
from itertools import product

import numpy as np
from sqlglot import exp

from analytics.errors import QueryRefused
from analytics.intervals import interval_of, may_be_null
from analytics.temporal import Temporal
from flai.datasets.schema import Categorical, Numeric, TabularSchema

Value = str | int | float | date | datetime | None

MAX_INTEGER_KEYS = 10_000  # the most integers a bare integer-bounded column may group by


def domain_of(expression: exp.Expression, schema: TabularSchema) -> tuple[Value, ...]:
    """Every value ``expression`` can take on a row the schema allows, NULL included.

    >>> from flai.datasets.heart import SCHEMA
    >>> import sqlglot
    >>> domain_of(sqlglot.parse_one("FLOOR(age / 10) * 10"), SCHEMA)
    (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    >>> domain_of(sqlglot.parse_one("CASE WHEN chol > 240 THEN 'high' ELSE 'normal' END"), SCHEMA)
    ('high', 'normal')
    """
    handler = _HANDLERS.get(type(expression))
    if handler is None:
        raise QueryRefused(
            f"GROUP BY {expression.sql('duckdb')}: its domain cannot be derived from the schema; "
            "group by categorical columns, CASE with literal results, FLOOR/CEIL buckets of "
            "numeric columns, or year()/quarter()/month()/date_trunc() of date columns")
    return handler(expression, schema)


def cell_count(domains: Iterable[tuple[Value, ...]]) -> int:
    return math.prod(len(domain) for domain in domains)


def cell_keys(domains: tuple[tuple[Value, ...], ...]) -> list[tuple[Value, ...]]:
    """The key tuple of every cell, row-major (the last key varies fastest)."""
    return list(product(*domains))


def sql_literal(value: Value) -> str:
    """``value`` as a DuckDB literal.

    >>> [sql_literal(v) for v in ("it's", 3, 0.1, date(1994, 1, 1), None)]
    ["'it''s'", '3', '0.1', "DATE '1994-01-01'", 'NULL']
    """
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-")
    return str(value)


def _unique(values: Iterable[Value]) -> tuple[Value, ...]:
    seen: list[Value] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return tuple(seen)


def _column(expression: exp.Column, schema: TabularSchema) -> tuple[Value, ...]:
    column = schema.column(expression.name)
    nulls: tuple[Value, ...] = (None,) if column.max_null_fraction > 0 else ()
    if isinstance(column, Categorical):
        return column.domain + nulls
    if (isinstance(column, Numeric) and column.integral
            and column.high - column.low < MAX_INTEGER_KEYS):
        return tuple(range(math.ceil(column.low), math.floor(column.high) + 1)) + nulls
    if isinstance(column, Temporal):
        raise QueryRefused(f"GROUP BY {column.name}: group a date by year(), quarter(), month() "
                           "or date_trunc()")
    raise QueryRefused(
        f"GROUP BY {column.name}: not categorical and not declared integral; "
        f"bucket it, e.g. FLOOR({column.name} / 10)")


def _literal(expression: exp.Literal, schema: TabularSchema) -> tuple[Value, ...]:
    if expression.is_string:
        return (expression.this,)
    number = float(expression.this)
    return (int(number) if number.is_integer() and "." not in expression.this else number,)


def _bucket(rounding: Callable[[float], int]) -> Callable:
    def handler(expression: exp.Expression, schema: TabularSchema) -> tuple[Value, ...]:
        inner = interval_of(expression.this, schema)
        nulls: tuple[Value, ...] = (None,) if may_be_null(expression.this, schema) else ()
        if inner.empty:
            return nulls or (None,)
        first, last = rounding(inner.low), rounding(inner.high)
        if last - first >= MAX_INTEGER_KEYS:
            raise QueryRefused(f"GROUP BY {expression.sql('duckdb')}: {last - first + 1} buckets; "
                               "use wider buckets")
        return tuple(range(first, last + 1)) + nulls
    return handler


def _arithmetic(op: Callable[[Value, Value], Value]) -> Callable:
    """A finite-domain side combined with a numeric literal; the literal may be either side."""
    def handler(expression: exp.Binary, schema: TabularSchema) -> tuple[Value, ...]:
        left, right = expression.this, expression.expression
        if isinstance(right, exp.Literal) and not right.is_string:
            (constant,) = _literal(right, schema)
            return _unique(None if v is None else op(v, constant) for v in domain_of(left, schema))
        if isinstance(left, exp.Literal) and not left.is_string:
            (constant,) = _literal(left, schema)
            return _unique(None if v is None else op(constant, v) for v in domain_of(right, schema))
        raise QueryRefused(f"GROUP BY {expression.sql('duckdb')}: arithmetic on a key needs a "
                           "numeric literal on one side")
    return handler


def _case(expression: exp.Case, schema: TabularSchema) -> tuple[Value, ...]:
    results = [branch.args["true"] for branch in expression.args["ifs"]]
    default = expression.args.get("default")
    values = [v for result in results for v in domain_of(result, schema)]
    values += list(domain_of(default, schema)) if default is not None else [None]
    return _unique(values)


def _coalesce(expression: exp.Coalesce, schema: TabularSchema) -> tuple[Value, ...]:
    arguments = [expression.this, *expression.expressions]
    values: list[Value] = []
    for argument in arguments:
        values += [v for v in domain_of(argument, schema) if v is not None]
    if all(None in domain_of(argument, schema) for argument in arguments):
        values.append(None)
    return _unique(values)


def _temporal(expression: exp.Expression, schema: TabularSchema) -> Temporal:
    inner = expression.this if isinstance(expression, exp.Paren) else expression
    column = schema.column(inner.name) if isinstance(inner, exp.Column) else None
    if not isinstance(column, Temporal):
        raise QueryRefused(f"{expression.sql('duckdb')} is not a date column with declared bounds")
    return column


def _date_part(unit: str, column: Temporal) -> tuple[Value, ...]:
    nulls: tuple[Value, ...] = (None,) if column.max_null_fraction > 0 else ()
    parts = {
        "YEAR": lambda: tuple(range(column.low.year, column.high.year + 1)),
        "QUARTER": lambda: (1, 2, 3, 4),
        "MONTH": lambda: tuple(range(1, 13)),
        "DAYOFWEEK": lambda: tuple(range(7)),
    }
    if unit not in parts:
        raise QueryRefused(f"GROUP BY on the {unit.lower()} of a date is not supported; "
                           "use year, quarter, month or day of week")
    return parts[unit]() + nulls


def _extract(expression: exp.Extract, schema: TabularSchema) -> tuple[Value, ...]:
    return _date_part(expression.this.name.upper(), _temporal(expression.expression, schema))


def _truncate(expression: exp.TimestampTrunc, schema: TabularSchema) -> tuple[Value, ...]:
    """DuckDB's ``date_trunc`` of a DATE is a TIMESTAMP: the domain holds datetimes."""
    column = _temporal(expression.this, schema)
    unit = expression.args["unit"].name.upper()
    months = {"YEAR": 12, "QUARTER": 3, "MONTH": 1}.get(unit)
    if months is None:
        raise QueryRefused(f"date_trunc('{unit.lower()}', ...) is not supported; "
                           "use year, quarter or month")
    start = (column.low.year * 12 + column.low.month - 1) // months * months
    stop = column.high.year * 12 + column.high.month - 1
    values: tuple[Value, ...] = tuple(datetime(m // 12, m % 12 + 1, 1)
                                      for m in range(start, stop + 1, months))
    return values + ((None,) if column.max_null_fraction > 0 else ())


_HANDLERS: dict[type, Callable[[exp.Expression, TabularSchema], tuple[Value, ...]]] = {
    exp.Column: _column,
    exp.Literal: _literal,
    exp.Null: lambda e, s: (None,),
    exp.Paren: lambda e, s: domain_of(e.this, s),
    exp.Case: _case,
    exp.If: lambda e, s: _unique([*domain_of(e.args["true"], s),
                                  *domain_of(e.args.get("false") or exp.Null(), s)]),
    exp.Coalesce: _coalesce,
    exp.Floor: _bucket(math.floor),
    exp.Ceil: _bucket(math.ceil),
    exp.Add: _arithmetic(operator.add),
    exp.Sub: _arithmetic(operator.sub),
    exp.Mul: _arithmetic(operator.mul),
    exp.Div: _arithmetic(operator.truediv),
    exp.Year: lambda e, s: _date_part("YEAR", _temporal(e.this, s)),
    exp.Quarter: lambda e, s: _date_part("QUARTER", _temporal(e.this, s)),
    exp.Month: lambda e, s: _date_part("MONTH", _temporal(e.this, s)),
    exp.DayOfWeek: lambda e, s: _date_part("DAYOFWEEK", _temporal(e.this, s)),
    exp.Extract: _extract,
    exp.TimestampTrunc: _truncate,
}
