"""``flai query`` end to end, cold and on a running federation, against DuckDB on the same files.

Run from the repository root, inside the loopback-only namespace (``make bench-query`` does)::

    scripts/loopback-only .venv/bin/python bench/query_latency.py [--cold-repeats 3] [--repeats 5]

The query is the README's heart query (``--sql`` to change it), asked of the heart federation
(the four hospitals' partitions, written by ``federation_for`` into this run's own data
directories, so the project's ``.flai`` and its privacy budget are never touched). Every FLAI
query asks for the policy's smallest epsilon, so the repeats stay inside the data set's budget.

Scenarios, each timed from outside as a whole process (launch -> exit, wall clock), the way a
user waits for it:

  cold       ``flai query`` with nothing running: the CLI starts Ray, the actors, the
             embedded chain and a temporary Prefect server itself. The partitions already
             exist and the Prefect database is created beforehand (neither is timed).
  running    ``flai query`` against a running federation: ``flai up --ray`` (Prefect server,
             worker, anvil, a Ray head) in this run's data directory, the stack's environment
             (``<data_dir>/stack/env``: ``PREFECT_API_URL``, ``FLAI_RAY_ADDRESS``, ...) given to
             the CLI. One untimed query first, so the federation's actors are up on the head;
             the timed queries measure whatever ``flai query`` does when they are.
  duckdb     the same SQL, centralised: a fresh Python process that imports DuckDB, reads the
             same partition files as one ``heart`` view and prints the result. Its in-process
             query time (connect + query, median) is reported too.

Pairs are interleaved (FLAI, DuckDB, FLAI, DuckDB, ...); reported are the median, min and max,
and the median of the per-pair ratios FLAI/DuckDB. The goals (issue 11): running <= 1 s,
cold <= 10 s. Writes ``bench/out/query_latency.json`` and ``bench/out/query_latency.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import flai  # noqa: E402,F401  (telemetry off before anything else loads)

FLAI = ROOT / ".venv" / "bin" / "flai"
SQL = "SELECT sex, COUNT(*) AS n, AVG(age) AS age FROM heart GROUP BY sex"
GOALS = {"cold": 10.0, "running": 1.0}
# What would point the CLI at some other stack; a scenario sets its own.
STACK_VARS = ("PREFECT_API_URL", "FLAI_RAY_ADDRESS", "FLAI_CHAIN_URL", "FLAI_IPFS_API",
              "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS", "FLAI_PROJECT_DIR")

DUCKDB = """
import sys, time, duckdb, json
started = time.perf_counter()
connection = duckdb.connect(config={"autoinstall_known_extensions": False,
                                    "autoload_known_extensions": False})
files = ", ".join("'" + f + "'" for f in json.loads(sys.argv[2]))
connection.execute(f"CREATE VIEW heart AS SELECT * FROM read_parquet([{files}])")
rows = connection.execute(sys.argv[1]).fetchall()
print(json.dumps({"rows": rows, "query_s": time.perf_counter() - started}, default=str))
"""


def heart_files(data_dir: Path) -> list[str]:
    """The heart federation's partitions in ``data_dir``, written as the CLI writes them."""
    from actors.federation import federation_for
    from flai.datasets import Dataset, partition_path, partitioning_for
    from flai.settings import Settings

    settings = Settings(data_dir=data_dir)
    federation = federation_for(Dataset.HEART, partitioning_for(Dataset.HEART), settings)
    return [str(partition_path(data_dir, federation.split or federation.name, provider, "heart"))
            for provider in federation.providers]


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARS}
    env.update(FLAI_DATA_DIR=str(data_dir), PREFECT_HOME=str(data_dir / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", RAY_USAGE_STATS_ENABLED="0",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def timed(command: list[str], env: dict[str, str], log: Path) -> tuple[float, int, str]:
    """(wall seconds launch -> exit, exit code, stdout); stderr goes to ``log``."""
    with log.open("a") as err:
        err.write(f"\n=== {time.strftime('%H:%M:%S')} {shlex.join(command[:3])} ...\n")
        err.flush()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        return time.perf_counter() - started, done.returncode, done.stdout


def flai_query(sql: str, epsilon: float, env: dict[str, str], log: Path) -> dict:
    seconds, code, out = timed([str(FLAI), "query", sql, "--epsilon", f"{epsilon:g}", "--format",
                                "json"], env, log)
    if code != 0:
        raise SystemExit(f"flai query exited {code}: {out.strip()[-500:]}\n(see {log})")
    return {"seconds": seconds, "rows": json.loads(out.strip().splitlines()[-1])["rows"]}


def duckdb_query(sql: str, files: list[str], env: dict[str, str], log: Path) -> dict:
    seconds, code, out = timed([sys.executable, "-c", DUCKDB, sql, json.dumps(files)], env, log)
    if code != 0:
        raise SystemExit(f"duckdb exited {code} (see {log})")
    answer = json.loads(out)
    return {"seconds": seconds, "query_s": answer["query_s"], "rows": answer["rows"]}


def same_groups(flai_rows: list[dict], duck_rows: list[list]) -> bool:
    """The same groups released (values differ: FLAI's are differentially private)."""
    return sorted(str(next(iter(r.values()))) for r in flai_rows) == sorted(str(r[0]) for r in duck_rows)


def stack_env(data_dir: Path, env: dict[str, str], log: Path) -> dict[str, str]:
    """``flai up --ray`` on free loopback ports; the environment a client of it gets."""
    from flai.net import free_port

    command = [str(FLAI), "up", "--ray", "--prefect-port", str(free_port()), "--anvil-port",
               str(free_port()), "--ray-port", str(free_port())]
    seconds, code, out = timed(command, env, log)
    if code != 0:
        raise SystemExit(f"flai up exited {code}:\n{out[-2000:]}\n(see {log})")
    client = dict(env)
    for line in (data_dir / "stack" / "env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        client[name] = shlex.split(value)[0] if value else ""
    client["_UP_SECONDS"] = f"{seconds:.3f}"
    return client


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [name for name in ("cold", "running") if name in summary]
    fig, ax = plt.subplots(figsize=(7, 4))
    flai_s = [summary[name]["flai"]["median"] for name in labels]
    duck_s = [summary[name]["duckdb"]["median"] for name in labels]
    x = range(len(labels))
    bars = ax.bar([i - 0.2 for i in x], flai_s, 0.4, label="flai query")
    ax.bar_label(bars, fmt="%.2f s")
    bars = ax.bar([i + 0.2 for i in x], duck_s, 0.4, label="DuckDB (process)")
    ax.bar_label(bars, fmt="%.2f s")
    for i, name in enumerate(labels):
        ax.hlines(GOALS[name], i - 0.4, i + 0.4, colors="red", linestyles="dashed",
                  label="goal" if i == 0 else None)
    ax.set_xticks(list(x), [f"{name} federation" for name in labels])
    ax.set_yscale("log")
    ax.set_ylabel("seconds, launch to exit (median, log scale)")
    ax.set_title("Heart query: flai query vs DuckDB on the same files")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sql", default=SQL)
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed queries on the running federation")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-running", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="data dirs and logs (default: a temp dir, removed after)")
    args = parser.parse_args()

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from flai.datasets import Dataset

    epsilon = Dataset.HEART.policy.epsilon_range[0]
    console = Console(width=None if sys.stdout.isatty() else 120)  # a log keeps whole tables
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="flai-query-bench-"))).resolve()
    log = work / "commands.log"
    work.mkdir(parents=True, exist_ok=True)
    scenarios = [name for name, skip in (("cold", args.skip_cold), ("running", args.skip_running))
                 if not skip]
    runs: dict[str, list[dict]] = {name: [] for name in scenarios}
    total = sum(2 * (args.cold_repeats if name == "cold" else args.repeats) for name in scenarios)
    running_dir, up_seconds = None, None
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console) as progress:
            bar = progress.add_task("writing partitions", total=total)
            for name in scenarios:
                data_dir = work / f"{name}-data"
                files = heart_files(data_dir)
                env = base_env(data_dir)
                if name == "cold":
                    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
                    subprocess.run([str(ROOT / ".venv" / "bin" / "prefect"), "server", "database",
                                    "upgrade", "-y"], env=env, check=True, capture_output=True)
                    repeats = args.cold_repeats
                else:
                    progress.update(bar, description="flai up --ray")
                    running_dir = data_dir
                    env = stack_env(data_dir, env, log)
                    up_seconds = float(env.pop("_UP_SECONDS"))
                    progress.update(bar, description="running: untimed first query (actors start)")
                    flai_query(args.sql, epsilon, env, log)
                    repeats = args.repeats
                for repeat in range(repeats):
                    progress.update(bar, description=f"{name}: flai query {repeat + 1}/{repeats}")
                    flai_run = flai_query(args.sql, epsilon, env, log)
                    progress.advance(bar)
                    progress.update(bar, description=f"{name}: duckdb {repeat + 1}/{repeats}")
                    duck_run = duckdb_query(args.sql, files, env, log)
                    progress.advance(bar)
                    runs[name].append({"flai_s": flai_run["seconds"], "duckdb_s": duck_run["seconds"],
                                       "duckdb_query_s": duck_run["query_s"],
                                       "same_groups": same_groups(flai_run["rows"], duck_run["rows"]),
                                       "flai_rows": flai_run["rows"], "duckdb_rows": duck_run["rows"]})
    finally:
        if running_dir is not None:
            subprocess.run([str(FLAI), "down", "--force"], env=base_env(running_dir),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)

    summary = {}
    table = Table(title=f"{args.sql}\nseconds, whole process (launch to exit); epsilon {epsilon:g}")
    for column in ("scenario", "runs", "flai query", "min-max", "DuckDB", "DuckDB query",
                   "FLAI/DuckDB", "goal", "groups"):
        table.add_column(column, justify="right")
    for name in scenarios:
        mine = runs[name]
        summary[name] = {"flai": stats([r["flai_s"] for r in mine]),
                         "duckdb": stats([r["duckdb_s"] for r in mine]),
                         "duckdb_query": stats([r["duckdb_query_s"] for r in mine]),
                         "ratio": statistics.median(r["flai_s"] / r["duckdb_s"] for r in mine),
                         "goal_s": GOALS[name], "same_groups": all(r["same_groups"] for r in mine)}
        s = summary[name]
        median = s["flai"]["median"]
        met = "met" if median <= GOALS[name] else f"{median / GOALS[name]:.1f}x over"
        table.add_row(name, str(len(mine)), f"{median:.2f}",
                      f"{s['flai']['min']:.1f}-{s['flai']['max']:.1f}", f"{s['duckdb']['median']:.2f}",
                      f"{s['duckdb_query']['median']:.3f}", f"{s['ratio']:.1f}x",
                      f"{GOALS[name]:g}: {met}", "same" if s["same_groups"] else "DIFFER")
    console.print(table)
    console.print("DuckDB: a fresh process on the same files; DuckDB query: its connect + query "
                  "alone. groups: the groups FLAI released are DuckDB's (values are DP-noised).")
    if up_seconds is not None:
        console.print(f"flai up --ray took {up_seconds:.1f} s (not in the figures)")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"sql": args.sql, "epsilon": epsilon, "cpus": os.cpu_count(), "flai_up_s": up_seconds,
              "summary": summary, "runs": runs}
    (args.out / "query_latency.json").write_text(json.dumps(report, indent=1, default=str))
    plot(summary, args.out / "query_latency.png")
    console.print(f"wrote {args.out / 'query_latency.json'} and {args.out / 'query_latency.png'}")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
