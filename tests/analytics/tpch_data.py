"""TPC-H ``lineitem`` and ``orders`` as registered data sets, split across providers.

Generated offline by DuckDB's TPC-H extension (the ``duckdb-extension-tpch`` package ships
the binary, loaded from its file; nothing is downloaded). Rows are dealt to providers by
order key with uneven shares, so an order's lines stay together, as in a real split by
business unit. Shared by the tests and ``bench/federated_sql.py``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import duckdb_extension_tpch

from analytics.temporal import Temporal
from flai.datasets.policy import DisclosurePolicy, Release
from flai.datasets.schema import Categorical, Numeric, TabularSchema

_DATES = (date(1992, 1, 1), date(1998, 12, 31))

# ``label`` is required by TabularSchema for training; TPC-H is not a training set.
LINEITEM = TabularSchema(
    name="lineitem",
    label="l_linenumber",
    columns=(
        Numeric("l_linenumber", 1, 7, integral=True),
        Numeric("l_quantity", 1, 50, integral=True),
        Numeric("l_extendedprice", 900, 105000),
        Numeric("l_discount", 0, 0.1),
        Numeric("l_tax", 0, 0.08),
        Categorical("l_returnflag", ("A", "N", "R")),
        Categorical("l_linestatus", ("F", "O")),
        Categorical("l_shipinstruct", ("COLLECT COD", "DELIVER IN PERSON", "NONE", "TAKE BACK RETURN")),
        Categorical("l_shipmode", ("AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK")),
        Temporal("l_shipdate", *_DATES),
        Temporal("l_commitdate", *_DATES),
        Temporal("l_receiptdate", *_DATES),
    ),
)

ORDERS = TabularSchema(
    name="orders",
    label="o_shippriority",
    columns=(
        Numeric("o_totalprice", 800, 600000),
        Numeric("o_shippriority", 0, 1, integral=True),
        Categorical("o_orderstatus", ("F", "O", "P")),
        Categorical("o_orderpriority", ("1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW")),
        Temporal("o_orderdate", *_DATES),
    ),
)

# TPC-H is synthetic: no person in it. Its owners release it exactly, as a benchmark.
POLICY = DisclosurePolicy(release=Release.EXACT, quantile_bins=256, max_cells=100_000,
                          note="TPC-H: synthetic benchmark data")

KEYS = {"lineitem": "l_orderkey", "orders": "o_orderkey"}
SHARES = (1, 2, 3, 4)  # provider i gets SHARES[i] / sum(SHARES) of the orders


def tpch_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the packaged TPC-H extension loaded from its file."""
    extension = next(Path(duckdb_extension_tpch.__file__).parent.rglob("tpch.duckdb_extension"))
    connection = duckdb.connect(config={"autoinstall_known_extensions": False,
                                        "autoload_known_extensions": False})
    connection.execute("SET enable_progress_bar = false")
    connection.execute(f"LOAD '{extension}'")
    return connection


def generate(directory: Path, scale_factor: float, tables: tuple[str, ...] = ("lineitem", "orders"),
             ) -> dict[str, list[Path]]:
    """Write ``directory/provider-i/<table>.parquet`` for each provider; return the files."""
    connection = tpch_connection()
    connection.execute(f"CALL dbgen(sf={scale_factor})")
    bounds = [sum(SHARES[:i]) for i in range(len(SHARES) + 1)]
    files: dict[str, list[Path]] = {}
    for table in tables:
        files[table] = []
        for i in range(len(SHARES)):
            path = directory / f"provider-{i}" / f"{table}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            bucket = f"hash({KEYS[table]}) % {sum(SHARES)}"
            connection.execute(
                f"COPY (SELECT * FROM {table} WHERE {bucket} >= {bounds[i]} AND {bucket} < {bounds[i + 1]}) "
                f"TO '{path}' (FORMAT parquet)")
            files[table].append(path)
    connection.close()
    return files
