"""Allow-list every node of the query: only known-pure operators, functions and types.

A node whose kind is not listed here is refused, so anything new (a table function, a file
reader, a UDF, a function sqlglot does not know and parses as ``Anonymous``) is refused by
default rather than by remembering to deny it. It is the first rule, so a refusal names the
forbidden function rather than whatever else the query gets wrong. String building
(``||``, CONCAT) and SIGN (a TINYINT that overflows in arithmetic) are left out on purpose.
"""

from __future__ import annotations

from sqlglot import exp

from analytics.errors import QueryRefused
from flai.datasets.schema import TabularSchema

_STRUCTURE = (
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Where, exp.Group,
    exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Alias, exp.Column, exp.Star,
    exp.Paren, exp.Literal, exp.Boolean, exp.Null, exp.Var, exp.Interval, exp.Cast, exp.TryCast,
    exp.DataType, exp.DataTypeParam,
)
_PREDICATES = (
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is,
    exp.Between, exp.In, exp.Like, exp.ILike, exp.NullSafeEQ, exp.NullSafeNEQ,
)
_SCALARS = (
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Pow, exp.Abs,
    exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Exp, exp.Least, exp.Greatest,
    exp.Coalesce, exp.Nullif, exp.If, exp.Case, exp.Lower, exp.Upper, exp.Length,
    exp.Substring, exp.Trim, exp.Year, exp.Quarter, exp.Month,
    exp.Day, exp.DayOfWeek, exp.Extract, exp.TimestampTrunc,
)
AGGREGATES = (
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Variance, exp.VariancePop, exp.Stddev,
    exp.StddevPop, exp.StddevSamp, exp.CovarPop, exp.CovarSamp, exp.Corr, exp.Median,
    exp.PercentileCont,
)
ALLOWED = frozenset(_STRUCTURE + _PREDICATES + _SCALARS + AGGREGATES)


def check_functions(expression: exp.Expression, schema: TabularSchema) -> exp.Expression:
    """Raise ``QueryRefused`` at the first node that is not on the allow-list.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> check_functions(sqlglot.parse_one("SELECT read_csv('/etc/passwd')", read="duckdb"), SCHEMA)
    Traceback (most recent call last):
    analytics.errors.QueryRefused: function READ_CSV is not allowed in federated SQL
    """
    for node in expression.walk():
        if type(node) not in ALLOWED:
            raise QueryRefused(f"{_describe(node)} is not allowed in federated SQL")
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
            raise QueryRefused("COUNT(DISTINCT ...) cannot be combined across providers")
    return expression


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, (exp.IgnoreNulls, exp.RespectNulls)):
        return _describe(node.this)
    if isinstance(node, exp.Anonymous):
        return f"function {node.name.upper()}"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}"
    return f"{node.key.upper()}"
