"""Exact Shapley in MPC for 4 and 8 Census providers, against the round's own training time.

A skeleton until valuation is a step of the round: the round here is trained in the clear
by ``tests.valuation.census_round`` (the providers' own ``flai.learning`` code, one epoch on
``--train-rows`` rows each), then every party process (aggregator, providers, TTP dealer)
joins one CrypTen session and runs ``flai.mpc.secure_utilities`` driven by exact Shapley:
all ``2**P`` coalitions in one batch, ``--rows`` validation rows per provider. Prints, per
federation size: the valuation's MPC seconds (inputs shared and step 3, then the batch), the
whole session at rank 0 (with the rendezvous), the round's training seconds (slowest provider:
providers train in parallel), the ratio, and the largest gaps to the plaintext utilities and
Shapley values. Writes bench/out/valuation.json.

Once wired, the lead replaces the plaintext round with a real ``fl_round`` and times its
training + secure aggregation in the same run.

    python bench/valuation.py [--providers 4 8] [--rows 64] [--train-rows 1500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test helpers: the Census round and the party processes
from flai.mpc.secure_utilities import UtilityInput, UtilitySpec  # noqa: E402
from flai.valuation.shapley import ExactShapley  # noqa: E402
from flai.valuation.utility import CoalitionUtility, coalition_qualities, value_round  # noqa: E402
from tests.valuation.census_round import census_round  # noqa: E402
from tests.valuation.parties import run_parties  # noqa: E402


class TimedExact:
    """Rank 0's drive: exact Shapley through ``value_round``, timed from the first batch."""

    def __init__(self, providers: list[str]) -> None:
        self.providers = providers

    def __call__(self, evaluate):
        started = time.perf_counter()
        valued = value_round(ExactShapley(), self.providers, evaluate)
        return valued, time.perf_counter() - started


def measure(providers: int, rows: int, train_rows: int) -> dict:
    round_ = census_round(providers, rows=rows, rows_per_provider=train_rows, seed=0)
    names = list(round_.staged)
    spec = UtilitySpec(tuple(names), round_.global_vector, rows)
    inputs = [UtilityInput(round_.staged[p], round_.holdouts[p].features, round_.holdouts[p].labels)
              for p in names]
    started = time.perf_counter()
    (valued, batch_seconds), _, session_seconds = run_parties(spec, inputs, TimedExact(names), timeout_s=900)
    wall = time.perf_counter() - started
    utility = CoalitionUtility(lambda cs: coalition_qualities(
        round_.global_vector, round_.staged, list(round_.holdouts.values()), cs))
    plain = ExactShapley().value(names, utility)
    training = max(round_.train_seconds)
    return {
        "providers": providers, "coalitions": 2**providers, "rows": rows * providers,
        "batch_s": round(batch_seconds, 3), "session_rank0_s": round(session_seconds, 3),
        "processes_wall_s": round(wall, 3), "round_training_s": round(training, 3),
        "session_over_training": round(session_seconds / training, 2),
        "max_loss_gap": max(abs(valued.qualities[c].log_loss - utility.qualities[c].log_loss)
                            for c in valued.qualities),
        "max_shapley_gap": max(abs(valued.values[p] - plain[p]) for p in names),
        "max_shapley": max(abs(v) for v in plain.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--train-rows", type=int, default=1500)
    args = parser.parse_args()
    results = [measure(p, args.rows, args.train_rows) for p in args.providers]
    for result in results:
        print(json.dumps(result))
    out = Path(__file__).parent / "out" / "valuation.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
