"""Give every output column a name, taken from the analyst's own text.

Later rules and finalise rename nothing, so an output named here keeps the name the analyst
would get from DuckDB-style SQL.
"""

from __future__ import annotations

from sqlglot import exp

from flai.datasets.schema import TabularSchema


def name_outputs(expression: exp.Select, schema: TabularSchema) -> exp.Select:
    """Alias every projection that has no alias.

    >>> import sqlglot
    >>> from flai.datasets.heart import SCHEMA
    >>> name_outputs(sqlglot.parse_one("SELECT sex, AVG(age) FROM heart GROUP BY sex"), SCHEMA).sql()
    'SELECT sex AS sex, AVG(age) AS "AVG(age)" FROM heart GROUP BY sex'
    """
    expression = expression.copy()
    expression.set("expressions", [
        projection if isinstance(projection, exp.Alias)
        else exp.alias_(projection, projection.sql("duckdb"), quoted=not isinstance(projection, exp.Column))
        for projection in expression.expressions
    ])
    return expression
