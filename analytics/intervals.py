"""Value bounds and nullability of row expressions, derived from the schema's declarations.

Every aggregated expression needs a bound on what one row can contribute: it sets the
fixed-point scaling of the secure sum, the neutral value of a secure MIN/MAX, the bins of a
quantile histogram and the sensitivity of differential-privacy noise. The bound comes from
the declared ``Numeric(low, high)`` bounds by interval arithmetic; an expression whose bound
cannot be derived (a string, a division by a range that contains zero) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from analytics.errors import QueryRefused
from flai.datasets.schema import Numeric, TabularSchema


@dataclass(frozen=True)
class Interval:
    """The closed range ``[low, high]``; ``low > high`` is the empty range (only NULLs).

    >>> Interval(-1, 2) * Interval(3, 4)
    Interval(low=-4, high=8)
    """

    low: float
    high: float

    @property
    def empty(self) -> bool:
        return self.low > self.high

    @property
    def magnitude(self) -> float:
        """The largest ``|value|`` in the range."""
        return 0.0 if self.empty else max(abs(self.low), abs(self.high))

    @property
    def midpoint(self) -> float:
        return 0.0 if self.empty else (self.low + self.high) / 2

    @property
    def half_width(self) -> float:
        return 0.0 if self.empty else (self.high - self.low) / 2

    def union(self, other: Interval) -> Interval:
        return Interval(min(self.low, other.low), max(self.high, other.high))

    def _combine(self, other: Interval, op: Callable[[float, float], float]) -> Interval:
        if self.empty or other.empty:
            return EMPTY
        corners = [op(a, b) for a in (self.low, self.high) for b in (other.low, other.high)]
        return Interval(min(corners), max(corners))

    def __add__(self, other: Interval) -> Interval:
        return self._combine(other, lambda a, b: a + b)

    def __sub__(self, other: Interval) -> Interval:
        return self._combine(other, lambda a, b: a - b)

    def __mul__(self, other: Interval) -> Interval:
        return self._combine(other, lambda a, b: a * b)

    def __neg__(self) -> Interval:
        return EMPTY if self.empty else Interval(-self.high, -self.low)


EMPTY = Interval(math.inf, -math.inf)


def interval_of(expression: exp.Expression, schema: TabularSchema) -> Interval:
    """The range of ``expression`` over every row the schema allows.

    >>> from flai.datasets.heart import SCHEMA
    >>> import sqlglot
    >>> interval_of(sqlglot.parse_one("age * 2 - 1"), SCHEMA)
    Interval(low=35.0, high=199.0)
    """
    handler = _HANDLERS.get(type(expression))
    if handler is None:
        raise QueryRefused(f"{expression.sql('duckdb')} has no bound derivable from the schema; "
                           "aggregate numeric columns with arithmetic, CASE, LEAST/GREATEST")
    return handler(expression, schema)


def may_be_null(expression: exp.Expression, schema: TabularSchema) -> bool:
    """Whether ``expression`` can be NULL for some row (conservative: True when unsure).

    >>> from flai.datasets.heart import SCHEMA
    >>> import sqlglot
    >>> may_be_null(sqlglot.parse_one("age + 1"), SCHEMA), may_be_null(sqlglot.parse_one("chol"), SCHEMA)
    (False, True)
    """
    if isinstance(expression, exp.Column):
        return schema.column(expression.name).max_null_fraction > 0
    if isinstance(expression, (exp.Null, exp.Nullif, exp.TryCast, exp.IntDiv, exp.Mod)):
        return True
    if isinstance(expression, exp.Literal):
        return False
    if isinstance(expression, exp.Case):
        default = expression.args.get("default")
        branches = [branch.args["true"] for branch in expression.args["ifs"]]
        return default is None or any(may_be_null(e, schema) for e in [*branches, default])
    if isinstance(expression, exp.If):
        false = expression.args.get("false")
        return false is None or any(may_be_null(e, schema) for e in (expression.args["true"], false))
    if isinstance(expression, (exp.Coalesce, exp.Least, exp.Greatest)):
        # DuckDB's LEAST/GREATEST skip NULL arguments, like COALESCE.
        return all(may_be_null(e, schema) for e in _arguments(expression))
    return any(may_be_null(child, schema) for child in expression.iter_expressions()
               if not isinstance(child, (exp.DataType, exp.Var)))


def _arguments(expression: exp.Expression) -> list[exp.Expression]:
    return [expression.this, *expression.expressions]


def _column(expression: exp.Column, schema: TabularSchema) -> Interval:
    column = schema.column(expression.name)
    if not isinstance(column, Numeric):
        raise QueryRefused(f"{expression.name} is not numeric; it cannot be summed or averaged")
    return Interval(column.low, column.high)


def _literal(expression: exp.Literal, schema: TabularSchema) -> Interval:
    if expression.is_string:
        raise QueryRefused(f"{expression.sql('duckdb')} is a string; it has no numeric bound")
    value = float(expression.this)
    return Interval(value, value)


def _divide(expression: exp.Div, schema: TabularSchema) -> Interval:
    divisor = interval_of(expression.expression, schema)
    if not divisor.empty and divisor.low <= 0 <= divisor.high:
        raise QueryRefused(f"{expression.sql('duckdb')} divides by a range that contains zero")
    reciprocal = EMPTY if divisor.empty else Interval(1 / divisor.high, 1 / divisor.low)
    return interval_of(expression.this, schema) * reciprocal


def _union(parts: list[exp.Expression], schema: TabularSchema) -> Interval:
    result = EMPTY
    for part in parts:
        result = result.union(interval_of(part, schema))
    return result


def _extreme(expression: exp.Expression, schema: TabularSchema, pick: Callable) -> Interval:
    parts = [interval_of(e, schema) for e in _arguments(expression)]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return EMPTY
    return Interval(pick(p.low for p in parts), pick(p.high for p in parts))


def _abs(expression: exp.Abs, schema: TabularSchema) -> Interval:
    inner = interval_of(expression.this, schema)
    if inner.empty or inner.low >= 0:
        return inner
    if inner.high <= 0:
        return -inner
    return Interval(0.0, inner.magnitude)


def _rounding(expression: exp.Expression, schema: TabularSchema) -> Interval:
    """FLOOR/CEIL/ROUND to whole numbers, or ``ROUND(x, -k)`` to multiples of ``10**k``."""
    inner = interval_of(expression.this, schema)
    decimals = expression.args.get("decimals")
    step = 1.0
    if decimals is not None:
        places = interval_of(decimals, schema)
        step = 10.0 ** -min(places.low, 0.0) if not places.empty else 1.0
    if inner.empty:
        return inner
    return Interval(math.floor(inner.low / step) * step, math.ceil(inner.high / step) * step)


def _power(expression: exp.Pow, schema: TabularSchema) -> Interval:
    base = interval_of(expression.this, schema)
    exponent = expression.expression
    if not (isinstance(exponent, exp.Literal) and not exponent.is_string
            and float(exponent.this).is_integer() and 0 <= float(exponent.this) <= 4):
        raise QueryRefused(f"{expression.sql('duckdb')}: only integer powers 0-4 have a bound")
    n = int(float(exponent.this))
    if base.empty:
        return EMPTY
    corners = [base.low**n, base.high**n]
    if n % 2 == 0 and base.low < 0 < base.high:
        corners.append(0.0)
    return Interval(min(corners), max(corners))


def _sqrt(expression: exp.Sqrt, schema: TabularSchema) -> Interval:
    inner = interval_of(expression.this, schema)
    if not inner.empty and inner.low < 0:
        raise QueryRefused(f"{expression.sql('duckdb')}: the argument may be negative")
    return inner if inner.empty else Interval(math.sqrt(inner.low), math.sqrt(inner.high))


def _ln(expression: exp.Ln, schema: TabularSchema) -> Interval:
    inner = interval_of(expression.this, schema)
    if not inner.empty and inner.low <= 0:
        raise QueryRefused(f"{expression.sql('duckdb')}: the argument may be zero or negative")
    return inner if inner.empty else Interval(math.log(inner.low), math.log(inner.high))


def _exp(expression: exp.Exp, schema: TabularSchema) -> Interval:
    inner = interval_of(expression.this, schema)
    if not inner.empty and inner.high > 700:
        raise QueryRefused(f"{expression.sql('duckdb')}: the argument may exceed 700")
    return inner if inner.empty else Interval(math.exp(inner.low), math.exp(inner.high))


def _integer_divide(expression: exp.IntDiv, schema: TabularSchema) -> Interval:
    quotient = _divide(exp.Div(this=expression.this.copy(), expression=expression.expression.copy()),
                       schema)
    return quotient if quotient.empty else Interval(math.floor(quotient.low), math.ceil(quotient.high))


def _remainder(expression: exp.Mod, schema: TabularSchema) -> Interval:
    """``a % b`` has the sign of ``a`` and is smaller than ``|b|`` (NULL where ``b`` is 0)."""
    dividend = interval_of(expression.this, schema)
    divisor = interval_of(expression.expression, schema)
    if dividend.empty or divisor.empty:
        return EMPTY
    limit = min(divisor.magnitude, dividend.magnitude)
    return Interval(-limit if dividend.low < 0 else 0.0, limit if dividend.high > 0 else 0.0)


def _cast(expression: exp.Cast, schema: TabularSchema) -> Interval:
    if not expression.to.is_type(*exp.DataType.NUMERIC_TYPES):
        raise QueryRefused(f"{expression.sql('duckdb')} is not numeric")
    return _rounding(expression, schema)


def _case(expression: exp.Case, schema: TabularSchema) -> Interval:
    parts = [branch.args["true"] for branch in expression.args["ifs"]]
    if expression.args.get("default") is not None:
        parts.append(expression.args["default"])
    return _union(parts, schema)


_HANDLERS: dict[type, Callable[[exp.Expression, TabularSchema], Interval]] = {
    exp.Column: _column,
    exp.Literal: _literal,
    exp.Null: lambda e, s: EMPTY,
    exp.Paren: lambda e, s: interval_of(e.this, s),
    exp.Neg: lambda e, s: -interval_of(e.this, s),
    exp.Add: lambda e, s: interval_of(e.this, s) + interval_of(e.expression, s),
    exp.Sub: lambda e, s: interval_of(e.this, s) - interval_of(e.expression, s),
    exp.Mul: lambda e, s: interval_of(e.this, s) * interval_of(e.expression, s),
    exp.Div: _divide,
    exp.IntDiv: _integer_divide,
    exp.Mod: _remainder,
    exp.Ln: _ln,
    exp.Exp: _exp,
    exp.Least: lambda e, s: _extreme(e, s, min),
    exp.Greatest: lambda e, s: _extreme(e, s, max),
    exp.Abs: _abs,
    exp.Floor: _rounding,
    exp.Ceil: _rounding,
    exp.Round: _rounding,
    exp.Pow: _power,
    exp.Sqrt: _sqrt,
    exp.Cast: _cast,
    exp.TryCast: _cast,
    exp.Case: _case,
    exp.If: lambda e, s: _union([e.args["true"], e.args.get("false") or exp.Null()], s),
    exp.Coalesce: lambda e, s: _union(_arguments(e), s),
    exp.Nullif: lambda e, s: interval_of(e.this, s),
}
