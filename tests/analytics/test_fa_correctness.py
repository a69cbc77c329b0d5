"""Federated (partials at 4 providers, combined in the clear, finalised) equals centralised.

Exact for counts, decimal sums and group keys; 1e-6 relative for floating aggregates; within
one bin width for approximate quantiles. DP off, k = 1 so that no real group is suppressed.
"""

from __future__ import annotations

import pytest
from federate import assert_same, centralised, federate
from tpch_data import LINEITEM, ORDERS, tpch_connection

from flai.datasets.heart import SCHEMA as HEART


def _tpch_query(number: int) -> str:
    connection = tpch_connection()
    (text,) = connection.execute("SELECT query FROM tpch_queries() WHERE query_nr = ?",
                                 [number]).fetchone()
    return text


# (id, sql, ordered): ``ordered`` compares row order too (the ORDER BY keys are unique).
LINEITEM_QUERIES = [
    ("q1", _tpch_query(1), True),
    ("q6", _tpch_query(6), False),
    ("count", "SELECT COUNT(*) FROM lineitem", False),
    ("shipmode_sums", "SELECT l_shipmode, COUNT(*), SUM(l_quantity) FROM lineitem GROUP BY l_shipmode", False),
    ("moments", "SELECT l_returnflag, l_linestatus, AVG(l_discount), STDDEV_SAMP(l_extendedprice), "
                "VAR_POP(l_quantity) FROM lineitem GROUP BY ALL", False),
    ("revenue_by_year", "SELECT year(l_shipdate) AS yr, SUM(l_extendedprice * (1 - l_discount)) AS revenue "
                        "FROM lineitem GROUP BY yr ORDER BY yr", True),
    ("extrema", "SELECT l_shipmode, MIN(l_extendedprice), MAX(l_extendedprice), MIN(l_discount), "
                "MAX(l_quantity) FROM lineitem GROUP BY 1", False),
    ("pairs", "SELECT l_shipinstruct, CORR(l_quantity, l_extendedprice), COVAR_POP(l_quantity, "
              "l_extendedprice), COVAR_SAMP(l_tax, l_discount) FROM lineitem GROUP BY l_shipinstruct", False),
    ("top_linenumbers", "SELECT l_linenumber, COUNT(*) AS n FROM lineitem GROUP BY l_linenumber "
                        "ORDER BY n DESC LIMIT 3", True),
    ("case_buckets", "SELECT CASE WHEN l_quantity < 10 THEN 'small' WHEN l_quantity < 30 THEN 'medium' "
                     "ELSE 'large' END AS size, COUNT(*), AVG(l_extendedprice) FROM lineitem GROUP BY size", False),
    ("floor_buckets", "SELECT FLOOR(l_quantity / 10) * 10 AS bucket, COUNT(*), SUM(l_extendedprice) "
                      "FROM lineitem GROUP BY 1 ORDER BY 1", True),
    ("quarters", "SELECT date_trunc('quarter', l_shipdate) AS q, COUNT(*) FROM lineitem WHERE l_shipdate "
                 ">= DATE '1995-01-01' AND l_shipdate < DATE '1996-01-01' GROUP BY q ORDER BY q", True),
    ("quantiles", "SELECT l_returnflag, MEDIAN(l_quantity), QUANTILE_CONT(l_extendedprice, 0.9) "
                  "FROM lineitem GROUP BY l_returnflag", False),
    ("returned_share", "SELECT l_shipmode, SUM(CASE WHEN l_returnflag = 'R' THEN l_extendedprice ELSE 0 END) "
                       "/ SUM(l_extendedprice) AS returned_share FROM lineitem GROUP BY l_shipmode "
                       "HAVING COUNT(*) > 100", False),
    ("q14_like", "SELECT 100.00 * SUM(CASE WHEN l_shipmode IN ('AIR', 'REG AIR') THEN l_extendedprice * "
                 "(1 - l_discount) ELSE 0 END) / SUM(l_extendedprice * (1 - l_discount)) AS promo_revenue "
                 "FROM lineitem WHERE l_shipdate >= DATE '1995-09-01' AND l_shipdate < DATE '1995-10-01'", False),
    ("q12_like", "SELECT l_shipmode, year(l_receiptdate) AS y, COUNT(*) FROM lineitem "
                 "WHERE l_commitdate < l_receiptdate AND l_shipdate < l_commitdate GROUP BY 1, 2", False),
    ("having_avg", "SELECT month(l_shipdate) AS m, AVG(l_tax) FROM lineitem GROUP BY m "
                   "HAVING AVG(l_tax) > 0.0395 ORDER BY m", True),
    ("filtered", "SELECT l_linestatus, COUNT(*) AS n, SUM(l_quantity) AS q FROM lineitem WHERE l_shipmode "
                 "LIKE '%AIR%' AND l_discount BETWEEN 0.02 AND 0.04 GROUP BY l_linestatus ORDER BY n DESC", True),
    ("quarter_spread", "SELECT quarter(l_shipdate) AS qtr, STDDEV_POP(l_discount), MAX(l_tax) "
                       "FROM lineitem GROUP BY qtr", False),
    ("products", "SELECT SUM(l_extendedprice * l_discount * l_tax), AVG(l_quantity * 2 + 1) "
                 "FROM lineitem WHERE l_returnflag <> 'N'", False),
]

ORDERS_QUERIES = [
    ("q4_like", "SELECT o_orderpriority, COUNT(*) AS order_count FROM orders WHERE o_orderdate >= "
                "DATE '1993-07-01' AND o_orderdate < DATE '1993-10-01' GROUP BY o_orderpriority "
                "ORDER BY o_orderpriority", True),
    ("status_year", "SELECT o_orderstatus, year(o_orderdate), AVG(o_totalprice), MIN(o_totalprice), "
                    "MAX(o_totalprice) FROM orders GROUP BY ALL", False),
    ("paged", "SELECT extract(year FROM o_orderdate) AS y, SUM(o_totalprice), VAR_SAMP(o_totalprice) "
              "FROM orders GROUP BY y ORDER BY y DESC LIMIT 3 OFFSET 1", True),
    ("median_price", "SELECT o_orderpriority, MEDIAN(o_totalprice) FROM orders GROUP BY 1", False),
]

HEART_QUERIES = [
    ("by_sex", "SELECT sex, COUNT(*), AVG(age) FROM heart GROUP BY sex", False),
    ("nullable_moments", "SELECT cp, AVG(chol), COUNT(chol), VAR_SAMP(chol) FROM heart GROUP BY cp", False),
    ("extrema", "SELECT disease, MIN(thalch), MAX(thalch), AVG(oldpeak) FROM heart GROUP BY disease", False),
    ("decades", "SELECT FLOOR(age / 10) * 10 AS decade, COUNT(*), AVG(disease) FROM heart "
                "GROUP BY decade ORDER BY decade", True),
    ("null_group", "SELECT thal, COUNT(*) FROM heart GROUP BY thal", False),
    ("integer_key", "SELECT ca, COUNT(*), AVG(age) FROM heart GROUP BY ca", False),
    ("pairs", "SELECT CORR(age, thalch), COVAR_SAMP(age, chol), STDDEV_SAMP(trestbps) FROM heart", False),
    ("quantiles", "SELECT sex, exang, COUNT(*), MEDIAN(age), QUANTILE_CONT(chol, 0.25) FROM heart "
                  "WHERE chol > 0 GROUP BY sex, exang", False),
    ("case_levels", "SELECT CASE WHEN chol IS NULL THEN 'unknown' WHEN chol >= 240 THEN 'high' "
                    "ELSE 'normal' END AS chol_level, COUNT(*) FROM heart GROUP BY 1", False),
    ("expressions", "SELECT sex, SUM(CASE WHEN disease = 1 THEN 1 ELSE 0 END) AS sick, "
                    "COUNT(*) - SUM(disease) AS healthy FROM heart GROUP BY sex ORDER BY sick DESC", True),
    ("two_keys_having", "SELECT restecg, slope, COUNT(*), SUM(oldpeak) FROM heart GROUP BY restecg, slope "
                        "HAVING COUNT(*) >= 5", False),
    ("span", "SELECT MAX(age) - MIN(age) AS span, COUNT(*) FROM heart WHERE sex = 'female'", False),
    ("having_alias", "SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex HAVING n > 200", False),
    ("order_by_shadowing_alias", "SELECT sex, COUNT(*) AS age FROM heart GROUP BY sex ORDER BY age DESC", True),
    ("qualified_top", "SELECT h.cp AS c, ROUND(AVG(h.age), 1) AS a FROM heart h WHERE h.age BETWEEN 40 AND 60 "
                      "GROUP BY c ORDER BY a DESC LIMIT 2", True),
    ("coalesce_key", "SELECT COALESCE(thal, 'unknown') AS t, COUNT(*) FROM heart GROUP BY 1", False),
    ("if_key_rate", "SELECT IF(age >= 55, 'old', 'young') AS g, SUM(disease) / COUNT(*) AS rate "
                    "FROM heart GROUP BY g", False),
]


def _ids(queries):
    return [name for name, _, _ in queries]


@pytest.mark.parametrize(("name", "sql", "ordered"), LINEITEM_QUERIES, ids=_ids(LINEITEM_QUERIES))
def test_lineitem(tpch_files, name, sql, ordered):
    ours, plan = federate(sql, LINEITEM, tpch_files["lineitem"])
    assert ours.num_rows > 0
    assert_same(ours, centralised(sql, "lineitem", tpch_files["lineitem"]), plan, ordered)


@pytest.mark.parametrize(("name", "sql", "ordered"), ORDERS_QUERIES, ids=_ids(ORDERS_QUERIES))
def test_orders(tpch_files, name, sql, ordered):
    ours, plan = federate(sql, ORDERS, tpch_files["orders"])
    assert ours.num_rows > 0
    assert_same(ours, centralised(sql, "orders", tpch_files["orders"]), plan, ordered)


@pytest.mark.parametrize(("name", "sql", "ordered"), HEART_QUERIES, ids=_ids(HEART_QUERIES))
def test_heart(heart_files, name, sql, ordered):
    ours, plan = federate(sql, HEART, heart_files)
    assert ours.num_rows > 0
    assert_same(ours, centralised(sql, "heart", heart_files), plan, ordered)


def test_quantile_error_bound_is_reported(heart_files):
    table, plan = federate("SELECT MEDIAN(age) AS m FROM heart", HEART, heart_files)
    width = (100 - 18) / 256
    assert dict(plan.error_bounds) == {"m": width}
    assert table.schema.metadata[b"flai.error_bounds"] == b'{"m": 0.3203125}'


def test_the_comparison_can_fail(heart_files):
    """The harness itself: a wrong federated answer must not pass as equal."""
    ours, plan = federate("SELECT sex, COUNT(*) FROM heart GROUP BY sex", HEART, heart_files)
    theirs = centralised("SELECT sex, COUNT(*) + 1 FROM heart GROUP BY sex", "heart", heart_files)
    with pytest.raises(AssertionError):
        assert_same(ours, theirs, plan, ordered=False)
