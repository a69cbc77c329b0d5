"""Which stack a command attaches to: the one running for its data directory (``flai up``).

Apart from ``deployments.stack`` so that attaching, done by every ``flai`` command, costs a
pid-file check and not the stack's imports (web3, the contracts).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from deployments.processes import Managed

SERVER = "prefect-server"  # the stack's part whose life says whether the stack runs


def attached_env(data_dir: Path) -> dict[str, str]:
    """The client environment of the stack running for ``data_dir`` (its env file, trusted
    while the stack's Prefect server lives); empty when no stack runs there."""
    path = data_dir / "stack" / "env"
    if not path.is_file() or Managed(SERVER, data_dir / "stack").process() is None:
        return {}
    assignments = (shlex.split(line)[-1] for line in path.read_text().splitlines() if line)
    return dict(assignment.split("=", 1) for assignment in assignments)
