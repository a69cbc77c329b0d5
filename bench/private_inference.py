"""Private inference back-ends vs plaintext and vs CrypTen's own ``crypten.nn``, in one run.

For logistic regression and the MLP (the real ``ModelKind`` modules, weights random and
scaled by 4, on heart's 38 encoded features), at batch 1 and 100, each timed as the median
of ``--repeats`` requests after one untimed warm-up:
  - plaintext: the torch module's forward pass (float64, one thread);
  - crypten.nn: ``crypten.nn.from_onnx`` of the same module (exported with
    ``torch.onnx.export(dynamo=False, opset_version=17)``), encrypted once by the holder
    (rank 0); per request the consumer (rank 1) shares its rows (``crypten.cryptensor(src=1)``),
    both run the model, the consumer gets the plain text (``get_plain_text(dst=1)``). Two
    spawned processes on gloo with CrypTen's default triples (rank 0 deals them: no dealer);
  - FLAI MPC: ``flai.inference.mpc`` on one kept session (holder, consumer and dealer
    processes, joined once): from the consumer encoding its rows to its decoded output;
  - FLAI HE: ``flai.inference.he`` in one process: encrypt, evaluate (the holder's public
    context already loaded), decrypt. Key generation is reported apart: once per consumer.
Every party runs one torch thread. Also reported: the largest error against plaintext.
Goals (issue 14): FLAI MPC at least 4x faster than crypten.nn on the same model and batch;
batch-1 logistic regression under 50 ms. Writes bench/out/private_inference.md.

    scripts/loopback-only .venv/bin/python bench/private_inference.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

BATCHES = (1, 100)
KINDS = ("logreg", "mlp")
OUT = Path(__file__).parent / "out" / "private_inference.md"


def _cases() -> list[tuple[str, int]]:
    return [(kind, batch) for kind in KINDS for batch in BATCHES]


def _model(kind: str) -> tuple[torch.nn.Module, bytes]:
    """The module and its ``model_bytes`` document, identical in every process."""
    from flai.learning.models import ModelKind, to_vector
    from tasks.publish import model_bytes

    model_kind = ModelKind(kind)
    vector = to_vector(model_kind.build(38, 7)) * 4
    data = model_bytes("bench", 1, model_kind, 38, vector)
    module = model_kind.build(38, 0).to(torch.float64)
    torch.nn.utils.vector_to_parameters(vector, module.parameters())
    return module.eval(), data


def _rows(batch: int) -> np.ndarray:
    from flai.datasets.heart import SCHEMA, load
    from flai.learning.features import encode

    return encode(load().head(batch), SCHEMA)[0].numpy().astype(np.float64)


def _median_seconds(run, repeats: int) -> tuple[float, object]:
    result = run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def plaintext(repeats: int) -> dict[tuple[str, int], tuple[float, float]]:
    torch.set_num_threads(1)
    results = {}
    for kind, batch in _cases():
        module, _ = _model(kind)
        x = torch.from_numpy(_rows(batch))
        with torch.no_grad():
            seconds, _ = _median_seconds(lambda: torch.sigmoid(module(x)), repeats)
        results[kind, batch] = (seconds, 0.0)
    return results


def _crypten_party(rank: int, port: int, repeats: int, queue) -> None:
    try:
        torch.set_num_threads(1)
        os.environ.update(RENDEZVOUS=f"tcp://127.0.0.1:{port}", WORLD_SIZE="2", RANK=str(rank),
                          DISTRIBUTED_BACKEND="gloo", GLOO_SOCKET_IFNAME="lo")
        from flai.inference import ModelWeights, plaintext_predict
        from flai.mpc.crypten_adapter import crypten

        crypten.init()
        for kind, batch in _cases():
            module, data = _model(kind)
            rows = _rows(batch)
            onnx_file = io.BytesIO()
            torch.onnx.export(module.float(), torch.zeros(batch, 38), onnx_file,
                              dynamo=False, opset_version=17)
            onnx_file.seek(0)
            private = crypten.nn.from_onnx(onnx_file).encrypt(src=0)
            x = torch.from_numpy(rows).float() if rank == 1 else torch.zeros(batch, 38)

            def request():
                logits = private(crypten.cryptensor(x, src=1)).get_plain_text(dst=1)
                return None if logits is None else torch.sigmoid(logits).double().numpy()[:, 0]

            seconds, predicted = _median_seconds(request, repeats)
            if rank == 1:
                error = np.abs(predicted - plaintext_predict(ModelWeights.from_model_bytes(data), rows)).max()
                queue.put(((kind, batch), (seconds, float(error))))
        crypten.uninit()
    except BaseException as error:
        queue.put(("failed", repr(error)))
        raise


def _flai_party(session, name: str, repeats: int, queue) -> None:
    try:
        torch.set_num_threads(1)
        from flai.inference import ModelWeights, plaintext_predict
        from flai.inference.mpc import MpcPlan, predict_as_consumer, serve_as_holder
        from flai.mpc.session import leave_session, run_in_session

        started = time.perf_counter()
        run_in_session(session, name, lambda rank: None)
        if name == "consumer":
            queue.put(("join", time.perf_counter() - started))
        for kind, batch in _cases():
            weights = ModelWeights.from_model_bytes(_model(kind)[1])
            rows, plan = _rows(batch), MpcPlan(weights.architecture, batch)
            if name == "holder":
                _median_seconds(lambda: run_in_session(
                    session, name, lambda rank: serve_as_holder(weights, plan)), repeats)
                continue
            seconds, predicted = _median_seconds(lambda: run_in_session(
                session, name, lambda rank: predict_as_consumer(rows, plan)), repeats)
            error = np.abs(predicted - plaintext_predict(weights, rows)).max()
            queue.put(((kind, batch), (seconds, float(error))))
        leave_session()
    except BaseException as error:
        queue.put(("failed", repr(error)))
        raise


def _in_processes(targets: list[tuple], expected: int) -> tuple[dict, dict]:
    """Start the processes, collect ``expected`` (case, result) pairs and any other notes."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=target, args=(*args, queue)) for target, *args in targets]
    for process in processes:
        process.start()
    results, notes = {}, {}
    try:
        while len(results) < expected:
            key, value = queue.get(timeout=600)
            if key == "failed":
                raise RuntimeError(f"a party failed: {value}")
            (results if isinstance(key, tuple) else notes)[key] = value
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return results, notes


def crypten_nn(repeats: int) -> dict:
    from flai.net import free_port

    port = free_port()
    return _in_processes([(_crypten_party, rank, port, repeats) for rank in (0, 1)],
                         len(_cases()))[0]


def flai_mpc(repeats: int) -> tuple[dict, float]:
    from flai.mpc.session import MpcSession, Triples
    from flai.net import free_port

    session = MpcSession("bench", ("holder", "consumer"), "127.0.0.1", free_port(), 60.0,
                         Triples.TTP)
    results, notes = _in_processes(
        [(_flai_party, session, "holder", repeats), (_flai_party, session, "consumer", repeats),
         (_dealer, session)], len(_cases()))
    return results, notes["join"]


def _dealer(session, queue) -> None:
    from flai.mpc.session import run_dealer

    torch.set_num_threads(1)
    run_dealer(session)


def flai_he(repeats: int) -> tuple[dict, float, dict]:
    torch.set_num_threads(1)
    from flai.inference import ModelWeights, plaintext_predict
    from flai.inference.he import HeConsumer, HeHolder

    started = time.perf_counter()
    consumer = HeConsumer()
    keygen = time.perf_counter() - started
    holder, results, sizes = HeHolder(), {}, {}
    for batch in BATCHES:
        weights = ModelWeights.from_model_bytes(_model("logreg")[1])
        rows = _rows(batch)

        def request():
            query = consumer.query(rows)
            sizes[batch] = (len(query.public_context), sum(map(len, query.ciphertexts)))
            return consumer.decrypt(holder.evaluate(weights, query), batch)

        seconds, predicted = _median_seconds(request, repeats)
        results["logreg", batch] = (seconds, float(np.abs(predicted - plaintext_predict(weights, rows)).max()))
    return results, keygen, sizes


def _report(plain, nn, ours, he, join_s, keygen_s, sizes) -> tuple[Table, str]:
    table = Table(title="Private inference, median seconds per request (error: max |p - plaintext p|)")
    headers = ["model", "batch", "plaintext", "crypten.nn", "FLAI MPC", "FLAI HE",
               "MPC / plain", "HE / plain", "crypten.nn / MPC", "MPC error", "HE error"]
    for header in headers:
        table.add_column(header, justify="right")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for case in _cases():
        he_cell = he.get(case)
        row = [case[0], str(case[1]), f"{plain[case][0]:.6f}", f"{nn[case][0]:.4f}",
               f"{ours[case][0]:.4f}", f"{he_cell[0]:.4f}" if he_cell else "n/a (ReLU)",
               f"{ours[case][0] / plain[case][0]:.0f}x",
               f"{he_cell[0] / plain[case][0]:.0f}x" if he_cell else "",
               f"{nn[case][0] / ours[case][0]:.1f}x", f"{ours[case][1]:.1e}",
               f"{he_cell[1]:.1e}" if he_cell else ""]
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    logreg_1 = ours["logreg", 1][0]
    speedups = {case: nn[case][0] / ours[case][0] for case in _cases()}
    notes = [
        f"One-off costs: FLAI MPC session join {join_s:.2f} s (then kept); HE key generation "
        f"{keygen_s:.2f} s, public context {sizes[1][0] / 2**20:.1f} MiB (loaded once per "
        f"consumer key by the holder); HE ciphertexts per request: "
        + ", ".join(f"batch {b}: {sizes[b][1] / 2**20:.2f} MiB" for b in BATCHES) + ".",
        "Goal, FLAI MPC >= 4x faster than crypten.nn: "
        + ", ".join(f"{k} b{b} {s:.1f}x" for (k, b), s in speedups.items())
        + (" (met)" if min(speedups.values()) >= 4 else " (NOT met everywhere)") + ".",
        f"Goal, batch-1 logistic regression under 50 ms: {logreg_1 * 1000:.1f} ms"
        + (" (met)." if logreg_1 < 0.05 else " (NOT met)."),
    ]
    markdown = "\n".join(["# Private inference", "", f"{os.cpu_count()} CPU cores; "
                          "produced by `bench/private_inference.py`.", "", *lines, "",
                          *(f"- {note}" for note in notes), ""])
    return table, markdown, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    console = Console()
    with console.status("plaintext"):
        plain = plaintext(args.repeats)
    with console.status("crypten.nn (2 processes)"):
        nn = crypten_nn(args.repeats)
    with console.status("FLAI MPC (holder, consumer, dealer)"):
        ours, join_s = flai_mpc(args.repeats)
    with console.status("FLAI HE"):
        he, keygen_s, sizes = flai_he(args.repeats)
    table, markdown, notes = _report(plain, nn, ours, he, join_s, keygen_s, sizes)
    console.print(table)
    for note in notes:
        console.print(note)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(markdown)
    console.print(f"written: {OUT}")


if __name__ == "__main__":
    main()
