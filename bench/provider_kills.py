"""How many training jobs survive a provider killed at a random moment, in one run.

One federation (heart: four hospitals) serves every job, as it would in production. Two
jobs without a kill warm up and time a job; then each of ``--jobs`` jobs of
``--rounds`` rounds has one random provider killed after a random delay within that
duration: half of the kills for good (``ray.kill(no_restart=True)``; the next job starts the
provider again), the others restarted by Ray. A job survived if it completed every round and
the chain holds each round exactly once. Prints one line per job and the count; writes
bench/out/provider_kills.json.

Run from the repository root, inside the loopback-only namespace (it starts Ray):

    scripts/loopback-only .venv/bin/python bench/provider_kills.py [--jobs 20] [--rounds 3]

The MPC and ping timeouts default to the test suite's (20 s and 5 s; ``FLAI_*`` overrides):
they bound how long a kill can cost, not whether a job survives it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FLAI_DATA_DIR", tempfile.mkdtemp(prefix="flai-kills-"))
os.environ.setdefault("FLAI_MPC_TIMEOUT_S", "20")
os.environ.setdefault("FLAI_PING_TIMEOUT_S", "5")
os.environ.setdefault("PREFECT_HOME", str(Path(os.environ["FLAI_DATA_DIR"]) / "prefect"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")  # the dropouts are in the table

import flai  # noqa: E402,F401  (telemetry off before ray/prefect load)
import ray  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from actors import federation as fed  # noqa: E402
from contracts import keccak_id  # noqa: E402
from flai.datasets import Dataset, Partitioning, federation_name, write_partitions  # noqa: E402
from flai.settings import get_settings  # noqa: E402
from flows.fl_training import TrainingJob, fl_training  # noqa: E402
from tasks.chain import ledger  # noqa: E402


@dataclass
class Kill:
    provider: str
    delay_s: float
    restarted: bool  # by Ray; otherwise killed for good
    at_s: float | None = None  # when it happened, from the job's start; None: the job ended first


@dataclass
class Outcome:
    job: int
    kill: Kill
    survived: bool
    seconds: float
    what_happened: str  # each provider's first dropout, or why the job failed


def _schedule(federation: fed.Federation, kill: Kill, started: float) -> threading.Timer:
    def fire() -> None:
        try:
            handle = fed.provider(federation, kill.provider)
        except ValueError:  # not running at that moment: nothing to kill
            return
        ray.kill(handle, no_restart=not kill.restarted)
        kill.at_s = time.perf_counter() - started

    timer = threading.Timer(kill.delay_s, fire)
    timer.start()
    return timer


def run_job(federation: fed.Federation, task_id: str, rounds: int, kill: Kill | None) -> tuple[bool, str]:
    """(whether the job survived, what happened), with ``kill`` fired during it."""
    started = time.perf_counter()
    timer = _schedule(federation, kill, started) if kill else None
    try:
        result = fl_training(TrainingJob(task_id, federation, rounds=rounds))
    except Exception as error:  # noqa: BLE001 - a failed job is the measurement
        return False, f"{type(error).__name__}: {error}"
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
    first: dict[str, str] = {}
    for r in result.rounds:
        for name, why in r.dropped.items():
            first.setdefault(name, f"round {r.round_number}: {name}: {why}")
    recorded = ledger().round_count(keccak_id(task_id))
    survived = len(result.rounds) == rounds and recorded == rounds
    chain = "" if recorded == rounds else f"; {recorded} round(s) on chain"
    return survived, ("; ".join(first.values()) or "no dropout") + chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console(width=160)
    settings = get_settings()
    how = Partitioning()
    files = write_partitions(Dataset.HEART, settings.data_dir, how)
    federation = fed.Federation("kills", Dataset.HEART, tuple(files),
                                federation_name(Dataset.HEART, how, len(files)))
    fed.start(federation)
    rng = random.Random(args.seed)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    with console.status("two jobs without a kill, to time one (the first also starts Prefect)"):
        for warm_up in ("warm-up", "timed"):
            started = time.perf_counter()
            warm, what = run_job(federation, f"kills-{stamp}-{warm_up}", args.rounds, None)
            duration = time.perf_counter() - started
    console.print(f"a {args.rounds}-round job takes {duration:.1f} s ({what}); kills land within that")
    if not warm:
        raise SystemExit("the job failed without a kill; nothing to measure")
    outcomes = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("jobs", total=args.jobs)
        for job in range(1, args.jobs + 1):
            kill = Kill(rng.choice(federation.providers), rng.uniform(0, duration), rng.random() < 0.5)
            progress.update(bar, description=f"job {job}: {kill.provider} killed after "
                                             f"{kill.delay_s:.1f} s")
            started = time.perf_counter()
            survived, what = run_job(federation, f"kills-{stamp}-{job}", args.rounds, kill)
            outcomes.append(Outcome(job, kill, survived, time.perf_counter() - started, what))
            progress.console.print(f"job {job}: {'survived' if survived else 'FAILED'} "
                                   f"({outcomes[-1].seconds:.0f} s) {what}")
            progress.advance(bar)
    fed.stop(federation)
    table = Table(title=f"{args.jobs} jobs, one provider killed in each")
    for column in ("job", "killed", "how", "at s", "survived", "s", "what happened"):
        table.add_column(column, justify="left" if column == "what happened" else "right")
    for o in outcomes:
        table.add_row(str(o.job), o.kill.provider, "restarted" if o.kill.restarted else "for good",
                      "after the job" if o.kill.at_s is None else f"{o.kill.at_s:.1f}",
                      "yes" if o.survived else "NO", f"{o.seconds:.0f}", o.what_happened)
    console.print(table)
    survived = sum(o.survived for o in outcomes)
    landed = sum(o.kill.at_s is not None for o in outcomes)
    console.print(f"[bold]{survived} of {args.jobs} jobs survived a provider killed at a random "
                  f"point[/bold] ({landed} kills landed while their job ran)")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "provider_kills.json").write_text(json.dumps(
        {"jobs": args.jobs, "rounds": args.rounds, "survived": survived, "kills_landed": landed,
         "job_seconds": duration,
         "outcomes": [asdict(o) for o in outcomes]}, indent=2))


if __name__ == "__main__":
    main()
