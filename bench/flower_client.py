"""The Flower side of ``bench/fl_vs_flower.py``: one federated job on Flower 1.42.

Runs with Flower's own venv (``make flower-env``: Flower pins a Ray other than FLAI's)::

    .venv-flower/bin/python bench/flower_client.py WORK_DIR

``WORK_DIR`` is what ``fl_vs_flower.py`` exported from FLAI's side: ``manifest.json`` (clients,
rounds, seed, FLAI's ``FitConfig`` fields, FLAI's Ray-free settings), ``init.npz`` (FLAI's
initial LOGREG weights) and ``client<i>.npz`` per provider (``xtr``, ``ytr``, ``xho``, ``yho``:
FLAI's own encoded train and holdout rows). Writes ``flower_result.json`` and
``flower_model.npz`` (the final global weights) to ``WORK_DIR``.

Flower as documented: a ``ServerApp`` running message-based ``FedAvg`` (weighted by
``num-examples``, every client every round, federated evaluation on every holdout every
round, as FLAI evaluates every round) and a ``ClientApp``, run in this process by
``flwr.simulation.run_simulation`` on the Ray backend, one CPU (one torch thread) per client.
The client trains with FLAI's ``flai.learning.local.train`` (torch only) and FLAI's
``ModelKind.LOGREG``, with round seed ``seed + round`` as FLAI's providers do, so the local step
is the same code, optimiser and hyper-parameters on both sides.

Timing (``time.time()``, comparable with the parent's clock):
  start_s   process start (the parent's launch time, ``--launched``) -> first train call
  rounds_s  per round; round 1 from the first train call, then mark to mark (after each
            round's aggregation and federated evaluation)
  total_s   is measured by the parent: launch -> this process's exit.
"""

from __future__ import annotations

import os

# Read when flwr / ray are imported; Ray's workers inherit them.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

# FLAI's torch-only modules and this file, for this process and (PYTHONPATH) Ray's workers.
_HERE = Path(__file__).resolve().parent
_PATHS = [str(_HERE.parent), str(_HERE)]
sys.path[:0] = [p for p in _PATHS if p not in sys.path]
os.environ["PYTHONPATH"] = os.pathsep.join(
    _PATHS + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in _PATHS])

import numpy as np  # noqa: E402
import torch  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402

from flai.learning import local  # noqa: E402  (torch only: runs in this venv too)
from flai.learning.models import ModelKind  # noqa: E402
from flai.learning.strategy import FitConfig  # noqa: E402

_DATA: dict[tuple[str, int], tuple[torch.Tensor, ...]] = {}  # per Ray actor process


def client_data(work: str, pid: int) -> tuple[torch.Tensor, ...]:
    """One client's (xtr, ytr, xho, yho), loaded once per actor process."""
    if (work, pid) not in _DATA:
        with np.load(Path(work) / f"client{pid}.npz") as arrays:
            _DATA[(work, pid)] = tuple(torch.from_numpy(arrays[k]) for k in ("xtr", "ytr", "xho", "yho"))
    return _DATA[(work, pid)]


def logreg(features: int, state: ArrayRecord) -> torch.nn.Module:
    model = ModelKind.LOGREG.build(features, 0)
    model.load_state_dict(state.to_torch_state_dict())
    return model


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    started = time.time()
    torch.set_num_threads(1)
    cfg = msg.content["config"]
    pid = int(context.node_config["partition-id"])
    X, y, _, _ = client_data(str(cfg["work"]), pid)
    model = logreg(X.shape[1], msg.content["arrays"])
    fit = FitConfig(**json.loads(str(cfg["fit"])))
    loss = local.train(model, X, y, fit, int(cfg["seed"]) + int(cfg["server-round"]))
    metrics = MetricRecord({"num-examples": len(y), "train_loss": loss, "pid": pid,
                            "t_start": started})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
                   reply_to=msg)


@client_app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    cfg = msg.content["config"]
    _, _, X, y = client_data(str(cfg["work"]), int(context.node_config["partition-id"]))
    model = logreg(X.shape[1], msg.content["arrays"])
    with torch.no_grad():
        logits = model(X).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y).item()
        accuracy = ((logits >= 0).float() == y).float().mean().item()
    metrics = MetricRecord({"num-examples": len(y), "eval_loss": loss, "eval_acc": accuracy})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


RUN: dict = {}  # what main() hands the ServerApp (same process) and reads back


def train_metrics(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """FedAvg's metric aggregation, keeping the first train call's time."""
    metrics = [next(iter(r.metric_records.values())) for r in records]
    RUN.setdefault("first_train", min(float(m["t_start"]) for m in metrics))
    weights = np.array([float(m[weight_key]) for m in metrics])
    losses = np.array([float(m["train_loss"]) for m in metrics])
    return MetricRecord({"train_loss": float(weights @ losses / weights.sum())})


def mark_round(server_round: int, arrays: ArrayRecord) -> None:
    """Called by ``Strategy.start`` before round 1 and after each round: a timestamp only."""
    RUN.setdefault("marks", {})[server_round] = time.time()


server_app = ServerApp()


@server_app.main()
def server(grid: Grid, context: Context) -> None:
    n = RUN["clients"]
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=n,
                      min_evaluate_nodes=n, min_available_nodes=n,
                      train_metrics_aggr_fn=train_metrics)
    config = ConfigRecord(RUN["client_config"])
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(RUN["init"]),
                            num_rounds=RUN["rounds"], train_config=config,
                            evaluate_config=config, evaluate_fn=mark_round)
    RUN["final"] = result.arrays.to_torch_state_dict()


def main(work: Path, launched: float) -> None:
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)
    manifest = json.loads((work / "manifest.json").read_text())
    with np.load(work / "init.npz") as init:
        state = {"weight": torch.from_numpy(init["weight"]), "bias": torch.from_numpy(init["bias"])}
    RUN.update(clients=manifest["clients"], rounds=manifest["rounds"], init=state,
               client_config={"work": str(work), "seed": manifest["seed"],
                              "fit": json.dumps(manifest["fit"])})
    cpus = max(1, os.cpu_count() or 1)
    run_simulation(
        server_app=server_app, client_app=client_app, num_supernodes=manifest["clients"],
        backend_name="ray",
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                        "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False,
                                      "logging_level": logging.ERROR, "log_to_driver": False}},
        verbose_logging=False)
    if "final" not in RUN:
        raise SystemExit("flower: the ServerApp did not finish (see Flower's log above)")
    marks, rounds = RUN["marks"], manifest["rounds"]
    rounds_s = [marks[1] - RUN["first_train"]] + [marks[r] - marks[r - 1] for r in range(2, rounds + 1)]
    np.savez(work / "flower_model.npz", **{k: v.numpy() for k, v in RUN["final"].items()})
    (work / "flower_result.json").write_text(json.dumps({
        "start_s": RUN["first_train"] - launched, "rounds_s": rounds_s,
        "flwr": version("flwr"), "ray": version("ray"),
        "torch": torch.__version__}))


if __name__ == "__main__":
    # Imported as a module so Ray's actors find the ClientApp by reference (objects of
    # __main__ would be pickled by value, and the per-actor data cache lost between calls).
    sys.dont_write_bytecode = True
    getattr(importlib.import_module("flower_client"), "main")(
        Path(sys.argv[1]).resolve(), float(sys.argv[2]) if len(sys.argv) > 2 else time.time())
