"""FLAI's federated training against Flower 1.42: same partitions, same features, same model.

Run from the repository root, inside the loopback-only namespace (``make bench-fl`` does)::

    make flower-env    # once: Flower 1.42 in .venv-flower (Flower pins another Ray than ours)
    scripts/loopback-only .venv/bin/python bench/fl_vs_flower.py [--providers 4 8] [--rounds 5] [--repeats 3]

The workload (Census-Income, Dirichlet label skew alpha 0.5, logistic regression) is FLAI's
own, exported from FLAI's side so both frameworks train on identical inputs:

* partitions: ``actors.federation.federation_for(census, partitioning_for(census, n, alpha,
  seed))``, written as the CLI writes them, into a data directory of this run;
* each provider's train/holdout rows: ``holdout_split(partition, HOLDOUT_FRACTION,
  settings.seed)``, as ``actors.provider.Provider`` splits them;
* features: ``flai.learning.features.encode`` of those rows, as the provider encodes them;
  saved as ``client<i>.npz`` for Flower;
* model and initial weights: ``ModelKind.LOGREG.build(features, seed)``, FLAI's initial model;
* local step: FLAI's ``flai.learning.local.train`` with FLAI's ``FitConfig()`` defaults (Adam,
  learning rate, batch size, epochs), round seed ``seed + round`` on both sides; Flower's
  client imports FLAI's torch-only modules, so it is the same code;
* rounds, every provider every round, federated evaluation on every holdout every round,
  one torch thread per client (FLAI's providers set it; Flower gives each client one CPU).

FLAI runs its real ``fl-training`` Prefect flow over its Ray provider actors with CrypTen
secure aggregation, as ``flai train`` does (minus the lineage read-back and the central
baseline that the CLI prints afterwards), in a fresh process. Flower runs
``bench/flower_client.py`` (``ServerApp``/``ClientApp``, ``run_simulation`` on Ray, FedAvg
weighted by ``num-examples``) with ``.venv-flower``'s Python. Pairs are interleaved
(FLAI, Flower, FLAI, Flower, ...) so drift in the machine's speed hits both alike.

Timing definitions (wall clock; ``time.time()`` in every process):
  job        the process's launch -> its exit, measured here: imports, Ray, actors, every
             round, teardown. Nothing FLAI or Flower does for the job is left out.
  start-up   launch -> the first round begins. Flower: the first ClientApp train call (as
             ``../shared/tools/flower_baseline.py`` defines it). FLAI cannot report that
             call from inside a provider actor; it is measured at the moment
             ``actors.federation.start`` returns (every actor answered; round 1's first step,
             participant selection, comes next). If a later FLAI stops calling it, start-up
             falls back to ``end of round 1 - launch - steady round`` ("estimated" in the
             JSON).
  round      FLAI: ``fl_training``'s ``on_round`` callback times; round r = end of round r-1
             (round 1: start-up mark) -> end of round r, i.e. selection, quality gate, local
             training, secure aggregation, federated evaluation, publishing and the chain
             record. Flower: ``Strategy.start``'s per-round hook; round 1 from the first train
             call; a round is training, FedAvg and federated evaluation.
  steady     mean of rounds 2..R.
  after rounds  job - start-up - all rounds: what follows the last round (FLAI: the training
             curve's report, Ray and the temporary Prefect server stopping; Flower: Ray's
             shutdown, saving the model).
Reported: the median over ``--repeats`` of each time, and the median of the per-pair ratios
FLAI/Flower (pairing keeps the ratio meaningful when the machine drifts).

Quality: each side's final global model is scored here, with the same numpy code, on the
pooled holdout rows of all providers (what FLAI's federated evaluation covers): accuracy
and balanced accuracy at 0.5, and the exact ROC AUC (Mann-Whitney rank formula, ties
averaged). FLAI's own federated metrics (from its securely summed counts) are kept in the
JSON too. Both sides run the same arithmetic, so their models should agree closely; the
largest weight difference is printed as a check.

Writes ``bench/out/fl_vs_flower.json`` and ``bench/out/fl_vs_flower.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import flai  # noqa: E402,F401  (telemetry off before anything else loads)
import numpy as np  # noqa: E402

FLOWER_PYTHON = ROOT / ".venv-flower" / "bin" / "python"
SIDES = ("FLAI", "Flower")
TIMES = ("job_s", "start_s", "steady_s", "teardown_s")


# -- the workload, exported from FLAI's side -------------------------------------------------

def export(providers: int, alpha: float, seed: int, rounds: int, work: Path) -> dict:
    """Write FLAI's partitions (where missing) and Flower's copy of exactly what FLAI's
    providers train and evaluate on; return the pooled holdout for scoring."""
    import pandas as pd
    import torch

    from actors.federation import federation_for
    from actors.provider import HOLDOUT_FRACTION
    from flai.datasets import Dataset, partition_path, partitioning_for
    from flai.datasets.partition import holdout_split
    from flai.learning.features import encode, feature_count
    from flai.learning.models import ModelKind
    from flai.learning.strategy import FitConfig
    from flai.settings import get_settings

    settings = get_settings()
    dataset = Dataset.CENSUS
    federation = federation_for(dataset, partitioning_for(dataset, providers, alpha, seed), settings)
    work.mkdir(parents=True, exist_ok=True)
    holdouts = []
    for index, name in enumerate(federation.providers):
        path = partition_path(settings.data_dir, federation.split or federation.name, name,
                              dataset.schema.name)
        train, holdout = holdout_split(pd.read_parquet(path), HOLDOUT_FRACTION, settings.seed)
        (xtr, ytr), (xho, yho) = encode(train, dataset.schema), encode(holdout, dataset.schema)
        np.savez(work / f"client{index}.npz", xtr=xtr.numpy(), ytr=ytr.numpy(), xho=xho.numpy(),
                 yho=yho.numpy())
        holdouts.append((xho.numpy(), yho.numpy(), len(ytr)))
    model = ModelKind.LOGREG.build(feature_count(dataset.schema), seed)
    with torch.no_grad():
        np.savez(work / "init.npz", weight=model.weight.numpy(), bias=model.bias.numpy())
    manifest = {"clients": providers, "rounds": rounds, "seed": seed, "alpha": alpha,
                "fit": dataclasses.asdict(FitConfig()), "federation": federation.name}
    (work / "manifest.json").write_text(json.dumps(manifest))
    return {"X": np.concatenate([h[0] for h in holdouts]), "y": np.concatenate([h[1] for h in holdouts]),
            "train_rows": [h[2] for h in holdouts], "fit": manifest["fit"],
            "features": int(model.weight.shape[1]), "federation": federation.name}


# -- FLAI's side: the real fl-training flow in a fresh process ---------------------------------

def flai_job(work: Path, launched: float) -> None:
    """Child process: one FLAI training job on the exported federation (``--flai-job``)."""
    from actors import federation as fed

    marks: dict[str, float] = {}
    real_start = fed.start

    def start(*args, **kwargs):
        failed = real_start(*args, **kwargs)
        marks.setdefault("rounds_begin", time.time())
        return failed

    fed.start = start  # flows.fl_training calls it as fed.start: the start-up mark
    from flai.datasets import Dataset, partitioning_for
    from flai.learning.models import ModelKind
    from flai.learning.strategy import FitConfig
    from flows.fl_training import TrainingJob, fl_training

    manifest = json.loads((work / "manifest.json").read_text())
    dataset = Dataset.CENSUS
    federation = fed.federation_for(dataset, partitioning_for(
        dataset, manifest["clients"], manifest["alpha"], manifest["seed"]))
    job = TrainingJob(f"bench-{federation.name}-{uuid.uuid4().hex[:8]}", federation,
                      ModelKind.LOGREG, manifest["rounds"], FitConfig(), 0.0, seed=manifest["seed"])
    ends: list[float] = []
    result = fl_training(job, on_round=lambda _: ends.append(time.time()))
    np.save(work / "flai_model.npy", result.global_vector.numpy())
    final = result.final
    (work / "flai_result.json").write_text(json.dumps({
        "rounds_begin": marks.get("rounds_begin"), "round_ends": ends, "launched": launched,
        "participants": [len(r.participants) for r in result.rounds],
        "reported": dataclasses.asdict(final.metrics),
        "secure_aggregation_s": [r.secure_aggregation_s for r in result.rounds]}))


def flai_times(result: dict) -> dict:
    ends, launched = result["round_ends"], result["launched"]
    steady = statistics.fmean(np.diff(ends)) if len(ends) > 1 else None
    if result["rounds_begin"] is not None:
        begin, estimated = result["rounds_begin"], False
    else:
        begin, estimated = ends[0] - (steady or 0.0), True
    return {"start_s": begin - launched, "start_estimated": estimated,
            "rounds_s": [ends[0] - begin, *np.diff(ends).tolist()], "steady_s": steady}


def run_side(side: str, work: Path, env: dict[str, str], log: Path) -> dict:
    """Launch one job in a fresh process; its timings, and its final model as (w, b)."""
    for stale in ("flai_result.json", "flower_result.json"):
        (work / stale).unlink(missing_ok=True)
    launched = time.time()
    if side == "FLAI":
        command = [sys.executable, str(Path(__file__).resolve()), "--flai-job", str(work), repr(launched)]
    else:
        command = [str(FLOWER_PYTHON), str(ROOT / "bench" / "flower_client.py"), str(work), repr(launched)]
    with log.open("a") as out:
        out.write(f"\n=== {side} {time.strftime('%H:%M:%S')} ===\n")
        out.flush()
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    job_s = time.time() - launched
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
        raise SystemExit(f"{side} job failed (exit {code}); last lines of {log}:\n{tail}")
    if side == "FLAI":
        result = json.loads((work / "flai_result.json").read_text())
        vector = np.load(work / "flai_model.npy")
        times = flai_times(result)
        weights = (vector[:-1], float(vector[-1]))
        extra = {"reported": result["reported"], "participants": result["participants"],
                 "secure_aggregation_s": result["secure_aggregation_s"]}
    else:
        result = json.loads((work / "flower_result.json").read_text())
        rounds = result["rounds_s"]
        times = {"start_s": result["start_s"], "start_estimated": False, "rounds_s": rounds,
                 "steady_s": statistics.fmean(rounds[1:]) if len(rounds) > 1 else None}
        with np.load(work / "flower_model.npz") as model:
            weights = (model["weight"].reshape(-1).astype(np.float64), float(model["bias"][0]))
        extra = {"versions": {k: result[k] for k in ("flwr", "ray", "torch")}}
    times["teardown_s"] = job_s - times["start_s"] - sum(times["rounds_s"])
    return {"job_s": job_s, **times, **extra, "weights": weights}


# -- scoring ---------------------------------------------------------------------------------

def exact_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank formula, ties counted half.

    >>> exact_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    >>> exact_auc(np.array([1.0, 1.0, 1.0]), np.array([0, 1, 1]))
    0.5
    """
    order = np.argsort(scores, kind="mergesort")
    ranked = scores[order]
    _, first, counts = np.unique(ranked, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(average, counts)
    positives = labels >= 0.5
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if not n_pos or not n_neg:
        return 0.5
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(weights: tuple[np.ndarray, float], X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy at 0.5, exact AUC, log loss."""
    w, b = weights
    logits = X.astype(np.float64) @ w + b
    predicted, positive = logits >= 0, y >= 0.5
    recall = (predicted & positive).sum() / max(positive.sum(), 1)
    specificity = (~predicted & ~positive).sum() / max((~positive).sum(), 1)
    loss = np.mean(np.logaddexp(0, logits) - y * logits)
    return {"accuracy": float((predicted == positive).mean()),
            "balanced_accuracy": float((recall + specificity) / 2),
            "auc": exact_auc(logits, y), "log_loss": float(loss)}


# -- the run ---------------------------------------------------------------------------------

def child_env(data_dir: Path, work_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FLAI_DATA_DIR=str(data_dir), FLWR_TELEMETRY_ENABLED="0", RAY_USAGE_STATS_ENABLED="0",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if "PREFECT_API_URL" not in env:  # FLAI's CLI then runs an ephemeral server: its own home
        env.setdefault("PREFECT_HOME", str(work_root / "prefect"))
    return env


def summarise_runs(runs: list[dict], holdout: dict) -> dict:
    by_side = {side: [r for r in runs if r["side"] == side] for side in SIDES}
    out: dict = {}
    for side, mine in by_side.items():
        out[side] = {key: statistics.median(r[key] for r in mine)
                     for key in TIMES if mine and mine[0][key] is not None}
        out[side].update(score(mine[-1]["weights"], holdout["X"], holdout["y"]))
    pairs = list(zip(by_side["FLAI"], by_side["Flower"]))
    out["ratio"] = {key: statistics.median(a[key] / b[key] for a, b in pairs)
                    for key in TIMES
                    if pairs and all(a[key] is not None and b[key] for a, b in pairs)}
    for key in ("accuracy", "balanced_accuracy", "auc"):
        out["ratio"][key] = out["FLAI"][key] / out["Flower"][key]
    (wa, ba), (wb, bb) = by_side["FLAI"][-1]["weights"], by_side["Flower"][-1]["weights"]
    out["FLAI"]["reported"] = by_side["FLAI"][-1]["reported"]
    out["max_weight_difference"] = float(max(np.abs(wa - wb).max(), abs(ba - bb)))
    return out


def print_table(console, providers: int, summary: dict, repeats: int) -> None:
    from rich.table import Table

    table = Table(title=f"census, {providers} providers, median of {repeats}")
    for column in ("", "job s", "start-up s", "steady round s", "after rounds s", "accuracy",
                   "bal. acc.", "AUC"):
        table.add_column(column, justify="right")
    fmt = {"job_s": "{:.1f}", "start_s": "{:.1f}", "steady_s": "{:.2f}", "teardown_s": "{:.1f}",
           "accuracy": "{:.4f}", "balanced_accuracy": "{:.4f}", "auc": "{:.4f}"}
    for side in SIDES:
        table.add_row(side, *(fmt[k].format(summary[side][k]) if k in summary[side] else "-"
                              for k in fmt))
    table.add_row("FLAI/Flower", *(f"{summary['ratio'][k]:.2f}x" if k in summary["ratio"] else "-"
                                     for k in fmt), style="bold")
    console.print(table)
    reported = summary["FLAI"]["reported"]
    console.print(f"ratios: median of the per-pair FLAI/Flower. Largest difference between the "
                  f"two final models' weights: {summary['max_weight_difference']:.2e}. FLAI's own "
                  f"federated metrics: accuracy {reported['accuracy']:.4f}, balanced "
                  f"{reported['balanced_accuracy']:.4f}, AUC {reported['auc']:.4f}.")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = sorted(results, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    groups = [(f"{n} prov.: {label}", key) for n in counts
              for label, key in (("job", "job_s"), ("start-up", "start_s"), ("steady round", "steady_s"))]
    x = np.arange(len(groups))
    for offset, side in ((-0.2, "FLAI"), (0.2, "Flower")):
        values = [results[label.split(" ")[0]][side].get(key, 0.0) for label, key in groups]
        bars = axes[0].bar(x + offset, values, 0.4, label=side)
        axes[0].bar_label(bars, fmt="%.1f", fontsize=7)
    axes[0].set_xticks(x, [g[0] for g in groups], rotation=30, ha="right", fontsize=8)
    axes[0].set_ylabel("seconds (median)")
    axes[0].set_title("Time, by provider count")
    axes[0].legend()
    metrics = [(f"{n} prov.: {m}", n, key) for n in counts
               for m, key in (("acc", "accuracy"), ("bal. acc", "balanced_accuracy"), ("AUC", "auc"))]
    x = np.arange(len(metrics))
    for offset, side in ((-0.2, "FLAI"), (0.2, "Flower")):
        axes[1].bar(x + offset, [results[n][side][key] for _, n, key in metrics], 0.4, label=side)
    axes[1].set_xticks(x, [m[0] for m in metrics], rotation=30, ha="right", fontsize=8)
    axes[1].set_ylim(0, 1)
    axes[1].set_title("Final model on the pooled holdouts")
    axes[1].legend()
    fig.suptitle("FLAI vs Flower 1.42: census, Dirichlet label skew, logistic regression")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved FLAI/Flower pairs")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="data dir, exports and logs (default: a temp dir, removed after)")
    parser.add_argument("--flai-job", nargs=2, metavar=("WORK", "LAUNCHED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flai_job:
        flai_job(Path(args.flai_job[0]), float(args.flai_job[1]))
        return
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the steady round is the mean of rounds 2..R)")
    if not FLOWER_PYTHON.exists():
        raise SystemExit(f"{FLOWER_PYTHON} is missing: run `make flower-env` first")

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(width=None if sys.stdout.isatty() else 120)  # a log keeps whole tables
    work_root = (args.work_dir or Path(tempfile.mkdtemp(prefix="flai-vs-flower-"))).resolve()
    data_dir = work_root / "data"
    os.environ["FLAI_DATA_DIR"] = str(data_dir)  # the exports' settings, and the children's
    env = child_env(data_dir, work_root)
    log = work_root / "jobs.log"
    results, runs_out = {}, {}
    try:
        if "PREFECT_API_URL" not in os.environ:  # the database exists before anything is timed
            Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
            subprocess.run([str(ROOT / ".venv" / "bin" / "prefect"), "server", "database", "upgrade",
                            "-y"], env=env, check=True, capture_output=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console) as progress:
            bar = progress.add_task("exporting", total=len(args.providers) * args.repeats * 2)
            for providers in args.providers:
                work = work_root / f"providers-{providers}"
                progress.update(bar, description=f"{providers} providers: exporting FLAI's partitions")
                holdout = export(providers, args.alpha, args.seed, args.rounds, work)
                runs = []
                for repeat in range(args.repeats):
                    for side in SIDES:
                        progress.update(bar, description=f"{providers} providers: {side} "
                                                         f"{repeat + 1}/{args.repeats}")
                        runs.append({"side": side, "repeat": repeat, **run_side(side, work, env, log)})
                        progress.advance(bar)
                results[str(providers)] = summarise_runs(runs, holdout)
                results[str(providers)]["fit"] = holdout["fit"]
                runs_out[str(providers)] = [{k: v for k, v in r.items() if k != "weights"} for r in runs]
        for providers in args.providers:
            print_table(console, providers, results[str(providers)], args.repeats)
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"workload": {"dataset": "census", "alpha": args.alpha, "rounds": args.rounds,
                               "seed": args.seed, "model": "logreg", "repeats": args.repeats,
                               "cpus": os.cpu_count()},
                  "summary": results, "runs": runs_out}
        (args.out / "fl_vs_flower.json").write_text(json.dumps(report, indent=1, default=str))
        plot(results, args.out / "fl_vs_flower.png")
        console.print(f"wrote {args.out / 'fl_vs_flower.json'} and {args.out / 'fl_vs_flower.png'}")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_root, ignore_errors=True)


if __name__ == "__main__":
    main()
