"""Every construct the brief refuses, through the whole planner, before anything runs."""

from __future__ import annotations

import pytest
from tpch_data import LINEITEM
from tpch_data import POLICY as TPCH

from analytics import QueryRefused, plan_query
from flai.datasets.heart import POLICY
from flai.datasets.heart import SCHEMA as HEART
from flai.datasets.policy import DisclosurePolicy

REFUSED = [
    # (sql, part of the reason)
    ("SELECT * FROM heart", "SELECT * would reveal rows"),
    ("SELECT heart.* FROM heart", "SELECT * would reveal rows"),
    ("SELECT age FROM heart", "every output must be an aggregate"),
    ("SELECT age, COUNT(*) FROM heart GROUP BY sex", "age is row-level"),
    ("SELECT sex, COUNT(*) FROM heart GROUP BY sex ORDER BY age", "neither aggregated nor a GROUP BY key"),
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "function READ_CSV is not allowed"),
    ("SELECT COUNT(*) FROM read_parquet('/data/*.parquet')", "READ_PARQUET is not allowed"),
    ("SELECT * FROM read_csv('/etc/passwd')", "function READ_CSV is not allowed"),
    ("SELECT getenv('HOME')", "function GETENV is not allowed"),
    ("SELECT COUNT(*) FROM glob('/etc/*')", "GLOB is not allowed"),
    ("SELECT COUNT(*) FROM 's3://bucket/heart.parquet'", "unknown table"),
    ("SELECT COUNT(*) FROM 'https://example.org/heart.csv'", "unknown table"),
    ("SELECT COUNT(*) FROM heart WHERE sex = read_text('/etc/hostname')", "READ_TEXT is not allowed"),
    ("SELECT COUNT(*) FROM heart WHERE sex = my_udf(age)", "MY_UDF is not allowed"),
    ("COPY heart TO '/tmp/leak.csv'", "COPY is not allowed"),
    ("COPY (SELECT * FROM heart) TO '/tmp/leak.parquet'", "COPY is not allowed"),
    ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH is not allowed"),
    ("INSTALL httpfs", "INSTALL is not allowed"),
    ("LOAD httpfs", "LOAD is not allowed"),
    ("PRAGMA database_list", "PRAGMA is not allowed"),
    ("SET enable_external_access = true", "SET is not allowed"),
    ("SELECT COUNT(*) FROM heart; SELECT COUNT(*) FROM heart", "exactly one statement"),
    ("SELECT COUNT(*) FROM heart; DROP TABLE heart", "exactly one statement"),
    ("SELECT COUNT(*) FROM (SELECT * FROM heart)", "SUBQUERY is not allowed"),
    ("SELECT COUNT(*) FROM heart WHERE age IN (SELECT age FROM heart)", "SUBQUERY is not allowed"),
    ("WITH h AS (SELECT * FROM heart) SELECT COUNT(*) FROM h", "WITH is not allowed"),
    ("SELECT COUNT(*) FROM heart a JOIN heart b ON a.age = b.age", "JOIN is not allowed"),
    ("SELECT COUNT(*) FROM heart, census", "JOIN is not allowed"),
    ("SELECT AVG(salary) FROM heart", "unknown column 'salary'"),
    ("SELECT COUNT(*) FROM census", "unknown table 'census'"),
    ("SELECT COUNT(*) FROM other.heart", "DB on the table is not supported"),
    ("SELECT COUNT(DISTINCT age) FROM heart", "COUNT(DISTINCT"),
    ("SELECT SUM(age) OVER () FROM heart", "WINDOW is not allowed"),
    ("SELECT COUNT(*) FROM heart WHERE SUM(age) > 3", "aggregates are not allowed in WHERE"),
    ("SELECT SUM(sex) FROM heart", "sex is not numeric"),
    ("SELECT AVG(age / oldpeak) FROM heart", "divides by a range that contains zero"),
    ("SELECT MAX(SUM(age)) FROM heart", "nested aggregate"),
    ("SELECT SQRT(age) AS s, COUNT(*) FROM heart GROUP BY SQRT(age)", "its domain cannot be derived"),
    ("SELECT COUNT(*) FROM heart GROUP BY oldpeak * chol", "arithmetic on a key needs a numeric literal"),
    ("SELECT COUNT(*) FROM heart GROUP BY age, chol, trestbps", "cells, more than"),
    ("SELECT QUANTILE_CONT(age, 2) FROM heart", "the quantile must be a literal in [0, 1]"),
    ("SELECT COUNT(*) FROM heart WHERE age >", "not valid SQL"),
]

TPCH_REFUSED = [
    ("SELECT l_shipdate, COUNT(*) FROM lineitem GROUP BY l_shipdate", "group a date by year()"),
    ("SELECT l_extendedprice, COUNT(*) FROM lineitem GROUP BY 1", "not categorical and not declared integral"),
    ("SELECT COUNT(l_comment) FROM lineitem", "unknown column 'l_comment'"),
    ("SELECT date_trunc('day', l_shipdate), COUNT(*) FROM lineitem GROUP BY 1", "date_trunc('day'"),
    ("SELECT SUM(l_shipdate) FROM lineitem", "l_shipdate is not numeric"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED, ids=[sql[:60] for sql, _ in REFUSED])
def test_refused(sql, reason):
    with pytest.raises(QueryRefused) as refused:
        plan_query(sql, HEART, POLICY)
    assert reason in refused.value.reason


@pytest.mark.parametrize(("sql", "reason"), TPCH_REFUSED, ids=[sql[:60] for sql, _ in TPCH_REFUSED])
def test_refused_tpch(sql, reason):
    with pytest.raises(QueryRefused) as refused:
        plan_query(sql, LINEITEM, TPCH)
    assert reason in refused.value.reason


def test_a_policy_with_a_group_size_below_one_cannot_exist():
    with pytest.raises(ValueError, match="inconsistent disclosure policy"):
        DisclosurePolicy(min_group_size=0)


def test_a_refusal_is_a_value_error_with_a_reason():
    error = QueryRefused("no")
    assert isinstance(error, ValueError) and error.reason == "no" and str(error) == "no"
