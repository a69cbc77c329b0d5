"""Real local stacks in temporary data directories, on free loopback ports.

Every stack these tests start runs inside the pytest process's network namespace
(``scripts/loopback-only .venv/bin/pytest tests/operator``) and is stopped by the test that
started it, whatever happens. Prefect clients point at a stack only inside
``support.prefect_api(config)``, so the session's test server (``prefect_server``) is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flai.stack import StackConfig
from tests.operator.support import free_ports


@pytest.fixture
def stack_config(tmp_path: Path) -> Iterator[StackConfig]:
    """A stack with IPFS, on free ports, in ``tmp_path``; stopped after the test."""
    from deployments import stack

    prefect_port, anvil_port, ipfs_port = free_ports(3)
    config = StackConfig(tmp_path / "data", prefect_port=prefect_port, anvil_port=anvil_port,
                         ipfs_api=f"http://127.0.0.1:{ipfs_port}")
    yield config
    stack.down(config.data_dir)
