"""The federations a running stack keeps up: ``flai up --ray`` starts their actors on the
stack's Ray head, where they stay (detached, named) until ``flai down``. Jobs, queries and
deployments then find them by name instead of starting Ray and actors themselves, and the
federation's MPC session stays open between them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from flai.stack import PROJECT_DIR, StackConfig, StackStartError

START_TIMEOUT_S = 600.0  # every provider imports its stack and loads its partition


def start(config: StackConfig, client_env: Mapping[str, str]) -> list[str]:
    """Start the configured demo federations on the stack's Ray head; their names.

    Runs as a client of the stack in a process of its own: Ray reads its token settings when
    it is imported. Raises ``StackStartError`` naming the providers that did not start.
    """
    if not config.federations:
        return []
    done = subprocess.run([sys.executable, "-m", "deployments.federations", *config.federations],
                          env={**os.environ, **client_env}, cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=START_TIMEOUT_S)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise StackStartError("federations", last[0])
    return done.stdout.split()


def _start_here(datasets: list[str]) -> None:
    """Start each data set's demo federation on the configured Ray cluster; print its name."""
    import ray

    from actors import federation as fed
    from flai.datasets import Dataset, partitioning_for

    fed.connect()
    for name in datasets:
        dataset = Dataset(name)
        federation = fed.federation_for(dataset, partitioning_for(dataset))
        failed = fed.start(federation)
        if failed:
            raise SystemExit(f"{federation.name}: providers did not start: {failed}")
        print(federation.name)
    ray.shutdown()  # the actors are detached: they stay with the head


if __name__ == "__main__":
    _start_here(sys.argv[1:])
