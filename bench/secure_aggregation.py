"""Secure weighted sum vs plaintext all-reduce of the same updates, measured in one run.

For N providers (plus the aggregator party, which holds zeros) and d parameters, every party
process joins one CrypTen session and times, on identical data:
  - secure:    FLAI's one-PRZS secure sum revealed to the aggregator (flai.mpc.secure_sum);
  - plaintext: torch.distributed.all_reduce of the float64 updates over the same gloo group;
  - naive:     one crypten.cryptensor per source, summed, then revealed (the approach FLAI avoids).
Prints seconds (median of repeats, slowest party) and secure/plaintext ratios; writes
bench/out/secure_aggregation.json.

    python bench/secure_aggregation.py [--parties 2 4 8] [--dims 10000 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table


def _party(session, name: str, dims: list[int], repeats: int, queue) -> None:
    try:
        _measure_party(session, name, dims, repeats, queue)
    except BaseException as error:  # the parent must not wait for a party that died
        queue.put(("failed", name, repr(error), None))
        raise


def _measure_party(session, name: str, dims: list[int], repeats: int, queue) -> None:
    torch.set_num_threads(1)
    import torch.distributed as dist

    from flai.mpc.crypten_adapter import crypten
    from flai.mpc.fixed_point import decode
    from flai.mpc.secure_sum import secure_sum
    from flai.mpc.session import joined

    with joined(session, name) as rank:
        for d in dims:
            generator = torch.Generator().manual_seed(rank)
            update = torch.zeros(d, dtype=torch.float64) if rank == 0 else \
                torch.randn(d, generator=generator, dtype=torch.float64)
            timings: dict[str, list[float]] = {"secure": [], "plaintext": [], "naive": []}
            error = 0.0
            for _ in range(repeats + 1):  # the first repeat warms up and is dropped
                dist.barrier()
                start = time.perf_counter()
                total = secure_sum(update)
                timings["secure"].append(time.perf_counter() - start)
                dist.barrier()
                plain = update.clone()
                start = time.perf_counter()
                dist.all_reduce(plain)
                timings["plaintext"].append(time.perf_counter() - start)
                if rank == 0:
                    error = (total - plain).abs().max().item()
                dist.barrier()
                start = time.perf_counter()
                shared = [crypten.cryptensor(update, src=src) for src in range(session_size(session))]
                ring = sum(shared[1:], shared[0])._tensor.reveal(dst=0)
                if rank == 0:
                    decode(ring)
                timings["naive"].append(time.perf_counter() - start)
            queue.put((rank, d, {k: statistics.median(v[1:]) for k, v in timings.items()}, error))


def session_size(session) -> int:
    return len(session.parties)


def measure(providers: int, dims: list[int], repeats: int) -> list[dict]:
    from flai.mpc.session import MpcSession
    from flai.net import free_port

    names = ("aggregator", *(f"provider-{i}" for i in range(providers)))
    session = MpcSession("bench", names, "127.0.0.1", free_port("127.0.0.1"), 600.0)
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_party, args=(session, name, dims, repeats, queue))
                 for name in names]
    for process in processes:
        process.start()
    results = []
    for _ in range(len(names) * len(dims)):
        results.append(queue.get(timeout=1800))
        if results[-1][0] == "failed":
            raise RuntimeError(f"party {results[-1][1]} failed: {results[-1][2]}")
    for process in processes:
        process.join()
    rows = []
    for d in dims:
        per_party = [r for r in results if r[1] == d]
        slowest = {k: max(r[2][k] for r in per_party) for k in ("secure", "plaintext", "naive")}
        error = next(r[3] for r in per_party if r[0] == 0)
        rows.append({"providers": providers, "d": d, **slowest, "max_error": error})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--dims", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    rows = []
    with Progress(console=console) as progress:
        bar = progress.add_task("sessions", total=len(args.parties))
        for providers in args.parties:
            progress.update(bar, description=f"{providers} providers + aggregator")
            rows += measure(providers, args.dims, args.repeats)
            progress.advance(bar)
    table = Table(title="Secure aggregation vs plaintext all-reduce (seconds, slowest party)")
    for column in ("providers", "d", "secure", "plaintext", "secure/plain", "naive",
                   "naive/plain", "max error"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["providers"]), f"{row['d']:,}", f"{row['secure']:.4f}",
                      f"{row['plaintext']:.4f}", f"{row['secure'] / row['plaintext']:.1f}x",
                      f"{row['naive']:.4f}", f"{row['naive'] / row['plaintext']:.1f}x",
                      f"{row['max_error']:.1e}")
    console.print(table)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "secure_aggregation.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
