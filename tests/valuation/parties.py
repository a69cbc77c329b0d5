"""Real CrypTen parties in spawned processes for ``secure_utilities``, with a TTP dealer.

Each party runs the production protocol inside ``flai.mpc.session.run_in_session``; this
only starts the processes (rank 0 the aggregator, then the providers, then the dealer) and
collects what each returned, with each party's seconds.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence

import torch

from flai.mpc.secure_utilities import UtilityInput, UtilitySpec, secure_utilities
from flai.mpc.session import MpcSession, Triples, run_dealer, run_in_session
from flai.net import free_port


def _party(session: MpcSession, name: str, spec: UtilitySpec, local: UtilityInput | None,
           drive, results) -> None:
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        result = run_in_session(session, name, lambda rank: secure_utilities(spec, local, drive))
        results.put((name, result, time.perf_counter() - started))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put((name, error, 0.0))


def run_parties(spec: UtilitySpec, inputs: Sequence[UtilityInput], drive: Callable,
                timeout_s: float = 300, specs: Sequence[UtilitySpec] | None = None):
    """``(rank 0's result, [other parties' results], rank 0's seconds)``.

    ``drive`` must pickle (a module-level function or object): it runs in rank 0's process.
    ``specs`` gives each party (rank order) its own spec, as if each had been told apart."""
    context = multiprocessing.get_context("spawn")
    names = ("aggregator", *spec.providers)
    session = MpcSession("valuation-test", names, "127.0.0.1", free_port(), 120.0, Triples.TTP)
    results = context.Queue()
    party_specs = specs or [spec] * len(names)
    arguments = [(None, drive)] + [(local, None) for local in inputs]
    processes = [context.Process(target=_party, args=(session, name, party_spec, local, d, results))
                 for name, party_spec, (local, d) in zip(names, party_specs, arguments)]
    processes.append(context.Process(target=run_dealer, args=(session,)))
    for process in processes:
        process.start()
    try:
        collected = {name: (value, seconds) for name, value, seconds in
                     (results.get(timeout=timeout_s) for _ in names)}
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    for name, (value, _) in collected.items():
        if isinstance(value, BaseException):
            raise RuntimeError(f"party {name} failed") from value
    return collected[names[0]][0], [collected[n][0] for n in names[1:]], collected[names[0]][1]


class ExactAndLeaveOneOut:
    """Rank 0's drive for the tests: exact Shapley, then leave-one-out in the same session
    (with its own memo, so it is a second batch), through the production ``value_round``."""

    def __init__(self, providers: Sequence[str]) -> None:
        self.providers = list(providers)

    def __call__(self, evaluate):
        from flai.valuation.shapley import ExactShapley, LeaveOneOut
        from flai.valuation.utility import value_round

        return value_round(ExactShapley(), self.providers, evaluate), \
            value_round(LeaveOneOut(), self.providers, evaluate)
