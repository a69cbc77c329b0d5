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

from flai.settings import get_settings
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
    stack.down(config.data_dir, force=True)


@pytest.fixture
def cli_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI reads settings once per process: point them at ``tmp_path`` for one test."""
    monkeypatch.setenv("FLAI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()
