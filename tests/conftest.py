"""Session-wide real parts: one local Ray cluster, one Prefect test server, one data dir.

Every test that starts a federation gives it a unique name, so actors never collide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_DATA_DIR = Path(tempfile.mkdtemp(prefix="flai-test-"))
os.environ["FLAI_DATA_DIR"] = str(_DATA_DIR)
os.environ["FLAI_MPC_TIMEOUT_S"] = "20"
os.environ["FLAI_PING_TIMEOUT_S"] = "5"
os.environ.setdefault("PREFECT_HOME", str(_DATA_DIR / "prefect"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import flai  # noqa: E402,F401  (telemetry off before ray/prefect load)
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _DATA_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session."""
    import ray

    from actors.federation import connect

    connect()
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server for the whole session: real flow runs, recorded."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
