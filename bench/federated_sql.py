"""Federated SQL against centralised DuckDB on TPC-H ``lineitem``, in one run.

Run from the repository root: ``.venv/bin/python bench/federated_sql.py [--scale-factor 1]``.

Federated: 5 processes, one CrypTen party each: rank 0 the aggregator (no data), ranks 1-4
providers holding 10, 20, 30 and 40 % of ``lineitem`` (hash-split on the order key), each in
its own locked DuckDB. Per query, every party plans the SQL itself; providers run their
partial queries; all parties run the secure combination (sums, MIN/MAX, suppression with
k = 10); rank 0 finalises. The time is wall clock at the coordinator, from sending the query
to holding the result. Centralised: one DuckDB with the same rows in one table. Both sides
run on the same machine in the same run; every DuckDB may use every core, as
each would on a machine of its own. Each query runs ``--repeats`` times on each side; the
median is reported. The MPC session is joined once; its rendezvous time is reported
separately (a deployment would open one per query or batch).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "analytics")]  # the TPC-H schemas and checks
from federate import assert_same  # noqa: E402
from tpch_data import LINEITEM, POLICY, generate, tpch_connection  # noqa: E402

from analytics import finalise, plan_query  # noqa: E402
from flai.mpc.secure_combine import secure_combine  # noqa: E402
from flai.mpc.session import MpcSession, Triples, joined, run_dealer  # noqa: E402
from flai.net import free_port  # noqa: E402
from flai.sql_engine import SqlEngine  # noqa: E402


def _tpch(number: int) -> str:
    (text,) = tpch_connection().execute(
        "SELECT query FROM tpch_queries() WHERE query_nr = ?", [number]).fetchone()
    return text


def queries() -> dict[str, str]:
    """At least ten aggregate queries, TPC-H Q1 and Q6 verbatim among them."""
    return {
        "Q1 pricing summary": _tpch(1),
        "Q6 forecast revenue": _tpch(6),
        "Q12-like ship modes": (
            "SELECT l_shipmode, SUM(CASE WHEN l_returnflag = 'R' THEN 1 ELSE 0 END) AS returned, "
            "COUNT(*) AS n FROM lineitem WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < "
            "l_receiptdate AND l_shipdate < l_commitdate AND l_receiptdate >= DATE '1994-01-01' AND "
            "l_receiptdate < DATE '1995-01-01' GROUP BY l_shipmode ORDER BY l_shipmode"),
        "Q14-like promo share": (
            "SELECT 100.00 * SUM(CASE WHEN l_shipmode IN ('AIR', 'REG AIR') THEN l_extendedprice * "
            "(1 - l_discount) ELSE 0 END) / SUM(l_extendedprice * (1 - l_discount)) AS promo_revenue "
            "FROM lineitem WHERE l_shipdate >= DATE '1995-09-01' AND l_shipdate < DATE '1995-10-01'"),
        "ship mode totals": ("SELECT l_shipmode, COUNT(*), SUM(l_quantity), AVG(l_extendedprice) "
                             "FROM lineitem GROUP BY 1"),
        "revenue by year": ("SELECT year(l_shipdate) AS y, SUM(l_extendedprice * (1 - l_discount)) AS r "
                            "FROM lineitem GROUP BY y ORDER BY y"),
        "monthly 1995": ("SELECT date_trunc('month', l_shipdate) AS m, COUNT(*), SUM(l_quantity) "
                         "FROM lineitem WHERE l_shipdate >= DATE '1995-01-01' AND l_shipdate < "
                         "DATE '1996-01-01' GROUP BY m ORDER BY m"),
        "extrema by flag": ("SELECT l_returnflag, MIN(l_extendedprice), MAX(l_extendedprice), "
                            "MIN(l_discount), MAX(l_quantity) FROM lineitem GROUP BY 1"),
        "spread and correlation": ("SELECT l_shipinstruct, STDDEV_SAMP(l_extendedprice), VAR_POP(l_quantity), "
                                   "CORR(l_quantity, l_extendedprice) FROM lineitem GROUP BY 1"),
        "approximate quantiles": ("SELECT l_linestatus, MEDIAN(l_quantity), QUANTILE_CONT(l_extendedprice, 0.9) "
                                  "FROM lineitem GROUP BY 1"),
        "size buckets": ("SELECT CASE WHEN l_quantity < 10 THEN 'small' WHEN l_quantity < 30 THEN 'medium' "
                         "ELSE 'large' END AS size, COUNT(*), AVG(l_discount) FROM lineitem GROUP BY size"),
        "147-cell cube": ("SELECT l_shipmode, l_returnflag, year(l_shipdate) AS y, COUNT(*), AVG(l_tax) "
                          "FROM lineitem GROUP BY ALL"),
    }


MIN_GROUP_SIZE = 10
BENCH_POLICY = dataclasses.replace(POLICY, min_group_size=MIN_GROUP_SIZE)


def _party(name: str, session: MpcSession, parquet: Path | None, threads: int | None,
           epsilon: float | None, commands, results) -> None:
    """One party for the whole run: join the session once, then answer queries in order."""
    torch.set_num_threads(1)
    engine = SqlEngine(parquet, LINEITEM, threads=threads) if parquet is not None else None
    started = time.perf_counter()
    with joined(session, name) as rank:
        results.put((name, "joined", time.perf_counter() - started, None))
        while (sql := commands.get()) is not None:
            t0 = time.perf_counter()
            plan = plan_query(sql, LINEITEM, BENCH_POLICY, epsilon)
            local = engine.run(plan.partials) if engine is not None else None
            t1 = time.perf_counter()
            combined = secure_combine(plan.combine, local)
            t2 = time.perf_counter()
            table = finalise(plan, combined) if rank == 0 else None
            t3 = time.perf_counter()
            results.put((name, "done", (t1 - t0, t2 - t1, t3 - t2), table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--data-dir", type=Path, default=Path(".flai/bench/tpch"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--provider", choices=("TFP", "TTP"), default="TTP",
                        help="Beaver triples from a dealer process (TTP, as in the fa-query flow) "
                             "or from rank 0 (TFP)")
    parser.add_argument("--epsilon", type=float, default=None,
                        help="release with differential privacy at this epsilon (default: exact, "
                             "as TPC-H's policy allows for this synthetic data set)")
    parser.add_argument("--provider-threads", type=int, default=None,
                        help="DuckDB threads per provider (default: every core, as on its own machine)")
    args = parser.parse_args()
    console = Console(width=120)
    directory = args.data_dir / f"sf{args.scale_factor:g}"
    files = sorted(directory.glob("provider-*/lineitem.parquet"))
    if len(files) != 4:
        with console.status(f"generating TPC-H lineitem at SF {args.scale_factor:g} for 4 providers"):
            started = time.perf_counter()
            files = generate(directory, args.scale_factor, tables=("lineitem",))["lineitem"]
        console.print(f"generated in {time.perf_counter() - started:.1f} s")

    central = duckdb.connect(config={"autoinstall_known_extensions": False,
                                     "autoload_known_extensions": False})
    central.execute("SET enable_progress_bar = false")
    listed = ", ".join(f"'{path}'" for path in files)
    central.execute(f"CREATE TABLE lineitem AS SELECT * FROM read_parquet([{listed}])")
    rows = central.execute("SELECT COUNT(*) FROM lineitem").fetchone()[0]
    shares = [central.execute(f"SELECT COUNT(*) FROM '{path}'").fetchone()[0] for path in files]
    console.print(f"lineitem: {rows:,} rows; providers hold {', '.join(f'{s:,}' for s in shares)}")

    todo = queries()
    context = multiprocessing.get_context("spawn")
    names = ("aggregator", *(f"provider-{i}" for i in range(len(files))))
    session = MpcSession("bench", names, "127.0.0.1", free_port(), 300.0, Triples(args.provider))
    commands = {name: context.Queue() for name in names}
    results = context.Queue()
    # Daemons: if this script dies, its parties die with it.
    processes = [context.Process(target=_party, daemon=True,
                                 args=(name, session, parquet, args.provider_threads, args.epsilon,
                                       commands[name], results))
                 for name, parquet in zip(names, (None, *files))]
    if args.provider == "TTP":
        processes.append(context.Process(target=run_dealer, args=(session,), daemon=True))
    for process in processes:
        process.start()
    joined_at = [results.get(timeout=600) for _ in names]
    rendezvous = max(seconds for _, _, seconds, _ in joined_at)
    console.print(f"5 parties loaded their tables and joined the MPC session; slowest took {rendezvous:.1f} s")

    load_before = os.getloadavg()[0]
    release = "exact" if args.epsilon is None else f"DP epsilon {args.epsilon:g}"
    report = Table(title=f"TPC-H lineitem SF {args.scale_factor:g}, 4 providers, k = {MIN_GROUP_SIZE}, "
                         f"{release}, triples: {args.provider}")
    for column in ("query", "central s", "federated s", "plan+partials s", "MPC s", "finalise s", "ratio", "match"):
        report.add_column(column, justify="left" if column == "query" else "right", no_wrap=True)
    ratios, mismatched = [], []
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("queries", total=len(todo))
            for label, sql in todo.items():
                central_times, federated_times, parts = [], [], []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    expected = central.execute(sql).to_arrow_table()
                    central_times.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    for name in names:
                        commands[name].put(sql)
                    answers = [results.get(timeout=600) for _ in names]
                    federated_times.append(time.perf_counter() - started)
                    by_name = {name: (timing, table) for name, _, timing, table in answers}
                    # The slowest provider's partials; the MPC as seen by the provider that
                    # joined last (the others' combine time includes waiting for it).
                    partial = max(by_name[name][0][0] for name in names[1:])
                    secure = min(by_name[name][0][1] for name in names[1:])
                    parts.append((partial, secure, by_name["aggregator"][0][2]))
                    table = by_name["aggregator"][1]
                plan = plan_query(sql, LINEITEM, BENCH_POLICY, args.epsilon)
                ordered = plan.final_sql.find("ORDER BY") >= 0
                try:
                    if args.epsilon is None:  # a DP release is noised on purpose
                        assert_same(table, expected, plan, ordered, abs_tol=1e-3)
                    match = "yes" if args.epsilon is None else "DP"
                except AssertionError:
                    match = "NO"
                    mismatched.append(label)
                central_s = statistics.median(central_times)
                federated_s = statistics.median(federated_times)
                ratio = federated_s / central_s
                ratios.append(ratio)
                partial_s, mpc_s, finalise_s = (statistics.median(p[i] for p in parts) for i in range(3))
                report.add_row(label, f"{central_s:.3f}", f"{federated_s:.3f}", f"{partial_s:.3f}",
                               f"{mpc_s:.3f}", f"{finalise_s:.3f}", f"{ratio:.2f}x", match)
                progress.advance(task)
    finally:
        for name in names:
            commands[name].put(None)
        for process in processes:
            process.join(timeout=60)
    console.print(report)
    console.print(f"median ratio federated / centralised: {statistics.median(ratios):.2f}x "
                  f"(target <= 2x); one-time session join: {rendezvous:.1f} s; load average "
                  f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    if mismatched:
        sys.exit(f"federated results differ from DuckDB's for: {', '.join(mismatched)}")


if __name__ == "__main__":
    main()
