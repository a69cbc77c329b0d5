"""Real CrypTen parties in spawned processes (not Ray): rank 0 aggregates, the rest provide.

Each party runs the production protocol, ``flai.mpc.secure_combine.secure_combine``, inside
``flai.mpc.session.run_in_session``; the harness only starts processes and collects what each
party returned. ``provider="TTP"`` adds CrypTen's trusted third-party dealer as one more
process (rank ``len(parties)``), which supplies the Beaver triples instead of rank 0.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence

import torch

from flai.mpc.secure_combine import secure_combine
from flai.query_types import CombinedVectors, CombineSpec, PartialVectors
from flai.mpc.session import MpcSession, Triples, run_dealer, run_in_session
from flai.net import free_port


def _party(session: MpcSession, name: str, spec: CombineSpec, local: PartialVectors | None,
           results) -> None:
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        result = run_in_session(session, name, lambda rank: secure_combine(spec, local))
        results.put((name, result, time.perf_counter() - started))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put((name, error, 0.0))


def combine_in_parties(spec: CombineSpec, partials: Sequence[PartialVectors], provider: str = "TFP",
                       timeout_s: float = 120, party_specs: Sequence[CombineSpec] | None = None,
                       ) -> tuple[list[CombinedVectors | None], list[float]]:
    """Every party's return value, rank order (rank 0 first), and each party's seconds.

    ``party_specs`` gives each party (rank order) its own spec, as if each planned alone."""
    context = multiprocessing.get_context("spawn")
    names = ("aggregator", *(f"provider-{i}" for i in range(len(partials))))
    session = MpcSession("test", names, "127.0.0.1", free_port(), 60.0, Triples(provider))
    results = context.Queue()
    locals_ = [None, *partials]
    specs = party_specs or [spec] * len(names)
    processes = [context.Process(target=_party, args=(session, name, party_spec, local, results))
                 for name, party_spec, local in zip(names, specs, locals_)]
    if provider == "TTP":
        processes.append(context.Process(target=run_dealer, args=(session,)))
    for process in processes:
        process.start()
    try:
        collected = dict((name, (value, seconds)) for name, value, seconds in
                         (results.get(timeout=timeout_s) for _ in names))
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    for name, (value, _) in collected.items():
        if isinstance(value, BaseException):
            raise RuntimeError(f"party {name} failed") from value
    return [collected[name][0] for name in names], [collected[name][1] for name in names]
