"""What N census providers cost on one machine: start-up time and memory, in one run.

Starts the census federation of ``--providers`` providers (Dirichlet label skew, alpha 0.5,
built by ``federation_for``) as Ray actors, then has each provider run its quality gate and
one local fit of logistic regression from the same start (no MPC). Prints the start-up
seconds (Ray, then every provider answering), the gate and fit seconds, each provider
process's USS and PSS (min / median / max), the PSS of every process of the run (driver,
Ray's daemons and workers), where one provider's memory lies (torch's libraries, other
libraries, the heap), and the machine's peak used memory (total - available, sampled every
0.2 s; other users of the machine count too, so the figure before the run is printed).
Writes bench/out/provider_footprint-N.json.

A provider validates its data with Great Expectations only for a data version it has not
judged before; the table says how many verdicts were already on disk. The first run over
fresh partitions therefore measures a cold gate, a second run a restarted federation.

Run from the repository root, inside the loopback-only namespace (it starts Ray):

    scripts/loopback-only .venv/bin/python bench/provider_footprint.py [--providers 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import flai  # noqa: E402,F401  (telemetry off before ray loads)
import psutil  # noqa: E402
import ray  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table  # noqa: E402

from actors import federation as fed  # noqa: E402
from flai.datasets import Dataset, partition_path, partitioning_for  # noqa: E402
from flai.learning.features import feature_count  # noqa: E402
from flai.learning.models import ModelKind, to_vector  # noqa: E402
from flai.learning.strategy import FitConfig  # noqa: E402
from flai.quality import verdict_path  # noqa: E402
from flai.settings import get_settings  # noqa: E402

MiB = 2**20


class PeakMemory(threading.Thread):
    """The machine's used memory (total - available), sampled until ``stop``."""

    def __init__(self, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.before = self.peak = self._used()
        self._stopped = threading.Event()

    @staticmethod
    def _used() -> int:
        memory = psutil.virtual_memory()
        return memory.total - memory.available

    def run(self) -> None:
        while not self._stopped.wait(self.every_s):
            self.peak = max(self.peak, self._used())

    def stop(self) -> int:
        self._stopped.set()
        self.join()
        return self.peak


def progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console)


def call_all(federation: fed.Federation, names: tuple[str, ...], call, what: str,
             console: Console, timeout_s: float) -> tuple[dict, dict]:
    """``call`` on every named provider at once, a bar advancing as each one answers."""
    refs = fed.start_calls(federation, names, call)
    pending = {ref: name for name, ref in refs.items() if isinstance(ref, ray.ObjectRef)}
    with progress(console) as bar:
        task = bar.add_task(what, total=len(pending))
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=deadline - time.monotonic())
            for ref in done:
                pending.pop(ref)
                bar.advance(task)
    return fed.gather(refs, timeout_s=0)


def memory_of(pid: int) -> dict[str, float]:
    """USS, PSS and RSS of one process, and its PSS by kind of mapping, in MiB."""
    process = psutil.Process(pid)
    full = process.memory_full_info()
    kinds = {"torch libraries": 0, "other libraries": 0, "heap and anonymous": 0}
    for mapping in process.memory_maps(grouped=True):
        if "torch" in mapping.path:
            kinds["torch libraries"] += mapping.pss
        elif mapping.path.startswith("/"):
            kinds["other libraries"] += mapping.pss
        else:
            kinds["heap and anonymous"] += mapping.pss
    return {"uss": full.uss / MiB, "pss": full.pss / MiB, "rss": full.rss / MiB,
            **{kind: size / MiB for kind, size in kinds.items()}}


def run_pss() -> float:
    """PSS of the driver and every process it started (Ray's daemons and workers), in MiB."""
    total = 0
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total / MiB


def spread(values: list[float]) -> str:
    return f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=0.5)
    args = parser.parse_args()
    console = Console(width=120)
    settings = get_settings()
    timeout_s = settings.provider_call_timeout_s
    memory = PeakMemory()
    memory.start()

    with console.status("writing the census partitions where missing (loads the data set)"):
        federation = fed.federation_for(Dataset.CENSUS, partitioning_for(
            Dataset.CENSUS, args.providers, args.alpha, settings.seed), settings)
    files = [partition_path(settings.data_dir, federation.split or federation.name, name,
                            federation.dataset.schema.name) for name in federation.providers]
    verdicts_on_disk = sum(verdict_path(path).exists() for path in files)

    started = time.perf_counter()
    with console.status("starting Ray"):
        fed.connect(settings)
    ray_s = time.perf_counter() - started
    with console.status(f"starting {args.providers} providers (and the aggregator and dealer)"):
        failed = fed.start(federation, settings)
    startup_s = time.perf_counter() - started
    if failed:
        raise SystemExit(f"providers did not start: {failed}")

    stage = time.perf_counter()
    verdicts, failed = call_all(federation, federation.providers,
                                lambda p: p.check_quality.remote(), "quality gate", console,
                                timeout_s)
    gate_s = time.perf_counter() - stage
    passing = tuple(name for name, report in verdicts.items() if report.passed)
    start = to_vector(ModelKind.LOGREG.build(feature_count(federation.dataset.schema), 0))
    stage = time.perf_counter()
    fits, fit_failed = call_all(federation, passing, lambda p: p.fit.remote(
        "footprint", start, ModelKind.LOGREG, FitConfig(), settings.seed), "one local fit",
        console, timeout_s)
    fit_s = time.perf_counter() - stage
    failed |= fit_failed

    pids = ray.get([fed.provider(federation, name).__ray_call__.remote(lambda _: os.getpid())
                    for name in federation.providers])
    providers = [memory_of(pid) for pid in pids]
    total_pss = run_pss()
    fed.stop(federation)
    ray.shutdown()
    peak = memory.stop()

    figures = {
        "providers": args.providers,
        "verdicts_on_disk_before": verdicts_on_disk,
        "ray_start_s": ray_s,
        "startup_s": startup_s,
        "gate_s": gate_s,
        "fit_s": fit_s,
        "fitted": len(fits),
        "failed": failed,
        "provider_uss_mib": [p["uss"] for p in providers],
        "provider_pss_mib": [p["pss"] for p in providers],
        "median_provider_pss_by_kind_mib": {
            kind: statistics.median(p[kind] for p in providers)
            for kind in ("torch libraries", "other libraries", "heap and anonymous")},
        "run_pss_mib": total_pss,
        "machine_used_before_mib": memory.before / MiB,
        "machine_peak_used_mib": peak / MiB,
    }
    table = Table(title=f"{args.providers} census providers on one machine "
                        f"({verdicts_on_disk} verdicts already on disk)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
            ("start-up: Ray", f"{ray_s:.1f} s"),
            ("start-up: Ray and every provider answering", f"{startup_s:.1f} s"),
            ("quality gate, all providers", f"{gate_s:.1f} s"),
            (f"one local fit, {len(fits)} providers", f"{fit_s:.1f} s"),
            ("provider USS, min / median / max", spread(figures["provider_uss_mib"]) + " MiB"),
            ("provider PSS, min / median / max", spread(figures["provider_pss_mib"]) + " MiB"),
            *((f"  median provider PSS: {kind}", f"{size:.0f} MiB") for kind, size
              in figures["median_provider_pss_by_kind_mib"].items()),
            ("PSS of the run (driver, Ray daemons, workers)", f"{total_pss / 1024:.2f} GiB"),
            ("machine used memory before the run", f"{memory.before / 2**30:.2f} GiB"),
            ("machine peak used memory", f"{peak / 2**30:.2f} GiB")):
        table.add_row(label, value)
    console.print(table)
    if failed:
        console.print(f"[red]failed:[/red] {failed}")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / f"provider_footprint-{args.providers}.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
