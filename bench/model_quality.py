"""Federated model quality against central training on the same rows, by provider count.

Census-Income split over 4, 8 and 16 providers by a Dirichlet(0.5) label skew (the demo
split), the job's default local config (``FitConfig()``), FedAvg, 5 rounds. Central is the
same model on the same encoded features, trained on the pooled training rows with the same
budget (``rounds * epochs``) and evaluated on the pooled holdouts
(``flai.learning.central``). Federated is, by default, the plaintext simulation of the rounds
(``flai.learning.simulation``: the same partitions, local training and aggregation, in one
process); ``--real`` runs the fl-training flow instead (provider actors, secure sums), whose
numbers match the simulation's up to the fixed-point rounding of the secure sum. Prints a
table with the AUC gap in points and writes bench/out/model_quality.json.

    .venv/bin/python bench/model_quality.py [--providers 4 8 16] [--rounds 5]
    scripts/loopback-only .venv/bin/python bench/model_quality.py --real [--both] --providers 4

The diagnosis of the 8-provider collapse, simulated: ``--optimiser adam --learning-rate 0.05
--no-prior`` (the old default), ``--no-prior`` (SGD without the label-prior shift).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FLAI_DATA_DIR", tempfile.mkdtemp(prefix="flai-quality-"))
os.environ.setdefault("PREFECT_HOME", str(Path(os.environ["FLAI_DATA_DIR"]) / "prefect"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

import flai  # noqa: E402,F401  (telemetry off before ray/prefect load)
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from actors.provider import HOLDOUT_FRACTION  # noqa: E402  (the providers' split)
from flai.datasets import Dataset, Partitioning, federation_name, write_partitions  # noqa: E402
from flai.learning.central import train_central  # noqa: E402
from flai.learning.metrics import Metrics  # noqa: E402
from flai.learning.models import ModelKind  # noqa: E402
from flai.learning.simulation import simulate  # noqa: E402
from flai.learning.strategy import FedAvg, FitConfig, LocalOptimiser  # noqa: E402
from flai.settings import get_settings  # noqa: E402


class FedAvgWithoutPrior(FedAvg):
    """FedAvg that never hands providers the label prior: each shard fits its own base rate."""

    def aggregate_evaluate(self, metrics: Metrics) -> None:
        pass


def federated_real(files: dict[str, Path], how: Partitioning, rounds: int, fit: FitConfig,
                   seed: int) -> list[Metrics]:
    from actors import federation as fed
    from flows.fl_training import TrainingJob, fl_training

    federation = fed.Federation(f"quality-{how.providers}-{time.strftime('%H%M%S')}",
                                Dataset.CENSUS, tuple(files),
                                federation_name(Dataset.CENSUS, how, len(files)))
    fed.start(federation)
    try:
        job = TrainingJob(federation.name, federation, ModelKind.LOGREG, rounds, fit, seed=seed)
        return [r.metrics for r in fl_training(job).rounds]
    finally:
        fed.stop(federation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimiser", type=LocalOptimiser, default=FitConfig().optimiser)
    parser.add_argument("--learning-rate", type=float, default=FitConfig().learning_rate)
    parser.add_argument("--no-prior", action="store_true", help="simulated: no label-prior shift")
    parser.add_argument("--real", action="store_true", help="run the fl-training flow (Ray, MPC)")
    parser.add_argument("--both", action="store_true", help="with --real: also simulate, compare")
    args = parser.parse_args()
    if args.real and args.no_prior:
        parser.error("--no-prior is for the simulation; a real job uses the strategy it is given")
    torch.set_num_threads(1)  # as each provider does
    console = Console(width=160)
    fit = FitConfig(learning_rate=args.learning_rate, optimiser=args.optimiser)
    strategy = FedAvgWithoutPrior if args.no_prior else FedAvg
    data_dir = get_settings().data_dir
    console.print(f"local config: {fit}; {strategy.__name__}, {args.rounds} rounds; "
                  f"data in {data_dir}")
    modes = (["simulated", "real"] if args.both else ["real"]) if args.real else ["simulated"]
    rows = []
    for providers in args.providers:
        how = Partitioning(providers, args.alpha, args.seed)
        files = write_partitions(Dataset.CENSUS, data_dir, how)
        paths = list(files.values())
        with console.status(f"{providers} providers: central"):
            central = train_central(Dataset.CENSUS, paths, ModelKind.LOGREG, fit, args.rounds,
                                    HOLDOUT_FRACTION, args.seed)
        rows.append({"providers": providers, "run": "central", **asdict(central)})
        for mode in modes:
            with console.status(f"{providers} providers: federated, {mode}"):
                started = time.perf_counter()
                history = (federated_real(files, how, args.rounds, fit, args.seed) if mode == "real"
                           else simulate(Dataset.CENSUS, paths, ModelKind.LOGREG, strategy(fit),
                                         args.rounds, HOLDOUT_FRACTION, args.seed))
                seconds = time.perf_counter() - started
            rows.append({"providers": providers, "run": f"federated ({mode})",
                         **asdict(history[-1]), "auc_by_round": [m.auc for m in history],
                         "seconds": seconds,
                         "auc_gap_points": 100 * (central.auc - history[-1].auc)})
    table = Table(title=f"Census-Income, Dirichlet α={args.alpha}, logreg, {args.rounds} rounds")
    for column in ("providers", "run", "AUC", "gap (pts)", "accuracy", "bal. acc.", "log loss",
                   "AUC by round"):
        table.add_column(column, justify="left" if column in ("run", "AUC by round") else "right")
    for row in rows:
        gap = row.get("auc_gap_points")
        table.add_row(str(row["providers"]), row["run"], f"{row['auc']:.4f}",
                      "" if gap is None else f"{gap:+.2f}", f"{row['accuracy']:.4f}",
                      f"{row['balanced_accuracy']:.4f}", f"{row['loss']:.4f}",
                      " ".join(f"{a:.3f}" for a in row.get("auc_by_round", [])))
    console.print(table)
    out = ROOT / "bench" / "out" / "model_quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"fit": asdict(fit), "strategy": strategy.__name__,
                               "rounds": args.rounds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
