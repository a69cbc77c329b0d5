"""Refuse every expression that could fail on a row's values: a provider never raises on data.

A DuckDB error raised by a row (a string cast to a number, an overflow, the logarithm of
zero) carries the row's values in its text, and whether a provider fails at all is a yes/no
answer about its data. So the query is typed before it runs, and accepted only where no row
the schema allows can make it fail:

- every comparison, CASE, COALESCE, LEAST/GREATEST and IN compares like with like (numbers
  with numbers, strings with strings, dates with dates or date literals): DuckDB would
  otherwise cast a column row by row;
- conditions are boolean; a LIKE pattern and a SUBSTRING position or ROUND precision are
  literals; strings are never built from columns;
- every arithmetic expression below an aggregate, constants included (DuckDB evaluates a
  failing constant per row, so ``CASE WHEN <one person> THEN LN(0) END`` would fail on that
  person alone), has a derivable bound of magnitude below ``MAX_MAGNITUDE`` (no integer
  overflow, no infinity), LN needs a positive argument, EXP one below 700; so does every
  aggregated argument; dates take no arithmetic; LIMIT and OFFSET are integer literals. CAST becomes TRY_CAST later (``safe_casts``), so a failed cast is
  NULL.
"""

from __future__ import annotations

from enum import Enum

from sqlglot import exp

from analytics.errors import QueryRefused
from analytics.intervals import interval_of
from analytics.temporal import Temporal
from flai.datasets.schema import Categorical, Numeric, TabularSchema

MAX_MAGNITUDE = 1e15  # far below 2**63 and every DOUBLE overflow


class Type(Enum):
    NUMBER = "number"
    STRING = "string"
    DATE = "date"
    BOOLEAN = "boolean"
    ANY = "NULL"  # a NULL literal fits anywhere


_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Pow,
               exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Exp)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
                exp.NullSafeNEQ)
_DATE_PARTS = (exp.Year, exp.Quarter, exp.Month, exp.Day, exp.DayOfWeek)
_CAST_TYPES = {
    **dict.fromkeys((exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT,
                     exp.DataType.Type.BIGINT), Type.NUMBER),
    **dict.fromkeys((exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP), Type.DATE),
    **dict.fromkeys((exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT), Type.STRING),
    exp.DataType.Type.BOOLEAN: Type.BOOLEAN,
}


def check_types(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """Raise ``QueryRefused`` unless every clause is well typed and cannot fail on data.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> check_types(sqlglot.parse_one("SELECT COUNT(*) FROM heart WHERE sex = 28"), SCHEMA)
    Traceback (most recent call last):
    analytics.errors.QueryRefused: sex = 28 compares a number with a string
    """
    for projection in expression.expressions:
        type_of(projection.unalias(), schema)
    for clause in ("where", "having"):
        node = expression.args.get(clause)
        if node is not None:
            _expect(node.this, Type.BOOLEAN, schema, clause.upper())
    group = expression.args.get("group")
    for key in group.expressions if group is not None else []:
        if not isinstance(key, exp.Literal):
            type_of(key, schema)
    for clause in ("limit", "offset"):
        node = expression.args.get(clause)
        count = node.expression if node is not None else None
        if count is not None and not (isinstance(count, exp.Literal) and count.is_int):
            raise QueryRefused(f"{clause.upper()} takes an integer literal")
    order = expression.args.get("order")
    for ordered in order.expressions if order is not None else []:
        if not isinstance(ordered.this, exp.Literal):
            type_of(ordered.this, schema)
    return expression


def type_of(node: exp.Expression, schema: TabularSchema) -> Type:
    """The type of a row expression; ``QueryRefused`` where it could fail on some row."""
    if isinstance(node, exp.Paren):
        return type_of(node.this, schema)
    if isinstance(node, exp.Column):
        return _column_type(node, schema)
    if isinstance(node, exp.Literal):
        return Type.STRING if node.is_string else Type.NUMBER
    if isinstance(node, exp.Boolean):
        return Type.BOOLEAN
    if isinstance(node, exp.Null):
        return Type.ANY
    if isinstance(node, exp.Cast):
        type_of(node.this, schema)
        cast = _CAST_TYPES.get(node.to.this)
        if cast is None:
            raise QueryRefused(f"CAST to {node.to.sql('duckdb')} is not allowed; cast to DOUBLE, "
                               "BIGINT, VARCHAR, DATE, TIMESTAMP or BOOLEAN")
        if cast is Type.NUMBER and node.find(exp.AggFunc) is None:
            _bounded(node, schema)
        return cast
    if isinstance(node, exp.AggFunc):
        return _aggregate(node, schema)
    if isinstance(node, _ARITHMETIC):
        for child in _children(node):
            _expect(child, Type.NUMBER, schema, node.sql("duckdb"))
        if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
            _literal_argument(node.args["decimals"], node)
        if node.find(exp.AggFunc) is None:  # constants too: DuckDB evaluates them per row
            _bounded(node, schema)
        return Type.NUMBER
    if isinstance(node, (exp.And, exp.Or, exp.Not)):
        for child in _children(node):
            _expect(child, Type.BOOLEAN, schema, node.sql("duckdb"))
        return Type.BOOLEAN
    if isinstance(node, _COMPARISONS):
        _same(node, [node.this, node.expression], schema, "compares")
        return Type.BOOLEAN
    if isinstance(node, exp.Between):
        _same(node, [node.this, node.args["low"], node.args["high"]], schema, "compares")
        return Type.BOOLEAN
    if isinstance(node, exp.In):
        _same(node, [node.this, *node.expressions], schema, "compares")
        return Type.BOOLEAN
    if isinstance(node, exp.Is):
        type_of(node.this, schema)
        return Type.BOOLEAN
    if isinstance(node, (exp.Like, exp.ILike)):
        _expect(node.this, Type.STRING, schema, node.sql("duckdb"))
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string) or node.args.get("escape"):
            raise QueryRefused(f"{node.sql('duckdb')}: the pattern must be a string literal")
        return Type.BOOLEAN
    if isinstance(node, (exp.Case, exp.If)):
        return _conditional(node, schema)
    if isinstance(node, (exp.Coalesce, exp.Least, exp.Greatest)):
        return _same(node, [node.this, *node.expressions], schema, "mixes")
    if isinstance(node, exp.Nullif):
        return _same(node, [node.this, node.expression], schema, "mixes")
    if isinstance(node, (exp.Lower, exp.Upper, exp.Trim)):
        _expect(node.this, Type.STRING, schema, node.sql("duckdb"))
        return Type.STRING
    if isinstance(node, exp.Length):
        _expect(node.this, Type.STRING, schema, node.sql("duckdb"))
        return Type.NUMBER
    if isinstance(node, exp.Substring):
        _expect(node.this, Type.STRING, schema, node.sql("duckdb"))
        for part in ("start", "length"):
            if node.args.get(part) is not None:
                _literal_argument(node.args[part], node)
        return Type.STRING
    if isinstance(node, (*_DATE_PARTS, exp.Extract)):
        _expect(node.expression if isinstance(node, exp.Extract) else node.this, Type.DATE,
                schema, node.sql("duckdb"))
        return Type.NUMBER
    if isinstance(node, exp.TimestampTrunc):
        _expect(node.this, Type.DATE, schema, node.sql("duckdb"))
        return Type.DATE
    if isinstance(node, (exp.DPipe, exp.Concat)):
        raise QueryRefused(f"{node.sql('duckdb')}: strings cannot be built from columns; "
                           "compare columns with literals instead")
    if isinstance(node, exp.Interval):
        raise QueryRefused(f"{node.sql('duckdb')}: date arithmetic is not supported; "
                           "compare dates with date literals")
    raise QueryRefused(f"{node.sql('duckdb')} is not supported in federated SQL")


def _column_type(node: exp.Column, schema: TabularSchema) -> Type:
    if node.name not in schema.column_names:
        return Type.ANY  # an output alias in HAVING or ORDER BY, typed where it was defined
    column = schema.column(node.name)
    if isinstance(column, Numeric):
        return Type.NUMBER
    if isinstance(column, Categorical):
        return Type.STRING
    if isinstance(column, Temporal):
        return Type.DATE
    raise QueryRefused(f"column {node.name} has an unsupported type")


def _aggregate(node: exp.AggFunc, schema: TabularSchema) -> Type:
    arguments = [a for a in (node.this, node.expression) if isinstance(a, exp.Expression)]
    for argument in arguments:
        if isinstance(argument, exp.Star):
            continue
        argument_type = type_of(argument, schema)
        if not isinstance(node, exp.Count) and argument_type not in (Type.NUMBER, Type.ANY):
            raise QueryRefused(f"{node.sql('duckdb')}: {argument.sql('duckdb')} is not numeric")
        if isinstance(node, exp.PercentileCont):
            break  # the fraction, checked by check_aggregation
    return Type.NUMBER


def _conditional(node: exp.Expression, schema: TabularSchema) -> Type:
    if isinstance(node, exp.If):
        _expect(node.this, Type.BOOLEAN, schema, node.sql("duckdb"))
        return _same(node, [node.args["true"], node.args.get("false") or exp.Null()], schema,
                     "mixes")
    subject = node.this
    for branch in node.args["ifs"]:
        if subject is not None:
            _same(branch, [subject, branch.this], schema, "compares")
        else:
            _expect(branch.this, Type.BOOLEAN, schema, node.sql("duckdb"))
    results = [branch.args["true"] for branch in node.args["ifs"]]
    return _same(node, [*results, node.args.get("default") or exp.Null()], schema, "mixes")


def _same(node: exp.Expression, parts: list[exp.Expression], schema: TabularSchema,
          verb: str) -> Type:
    """The one type of ``parts``; a string literal may stand for a date (cast once, at bind)."""
    types = [type_of(part, schema) for part in parts]
    known = {t for t in types if t is not Type.ANY}
    if known == {Type.DATE, Type.STRING}:
        if all(isinstance(p, exp.Literal) for p, t in zip(parts, types) if t is Type.STRING):
            return Type.DATE
    if len(known) > 1:
        names = " with a ".join(t.value for t in sorted(known, key=lambda t: t.value))
        raise QueryRefused(f"{node.sql('duckdb')} {verb} a {names}")
    return known.pop() if known else Type.ANY


def _expect(node: exp.Expression, expected: Type, schema: TabularSchema, where: str) -> None:
    found = type_of(node, schema)
    if found not in (expected, Type.ANY):
        raise QueryRefused(f"{where}: {node.sql('duckdb')} is a {found.value}, "
                           f"not a {expected.value}")


def _bounded(node: exp.Expression, schema: TabularSchema) -> None:
    bound = interval_of(node, schema)
    if not bound.empty and bound.magnitude > MAX_MAGNITUDE:
        raise QueryRefused(f"{node.sql('duckdb')} may reach {bound.magnitude:.3g}; values beyond "
                           f"{MAX_MAGNITUDE:g} are not supported")


def _literal_argument(argument: exp.Expression, node: exp.Expression) -> None:
    value = argument.this if isinstance(argument, exp.Neg) else argument
    if not (isinstance(value, exp.Literal) and not value.is_string
            and abs(float(value.this)) <= 1000):
        raise QueryRefused(f"{node.sql('duckdb')}: {argument.sql('duckdb')} must be a small "
                           "numeric literal")


def _children(node: exp.Expression) -> list[exp.Expression]:
    skip = (exp.DataType, exp.Var)
    children = [node.this, node.args.get("expression")]
    if isinstance(node, exp.Round):
        children = [node.this]
    return [c for c in children if isinstance(c, exp.Expression) and not isinstance(c, skip)]
