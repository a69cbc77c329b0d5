"""Fixtures of the storage tests: a real js-ipfs daemon (one per session) and stores on it.

The daemon is a real part, never mocked: when its tools are missing the tests that need it
fail with the install command instead of skipping.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.ipfs import RunningDaemon, start, stop
from flai.storage import KuboStore, LocalStore, StorageToolsMissingError

MiB = 1024 * 1024
# 0 B, 1 KB, exactly one chunk, 3 MB (12 chunks, one level), 50 MB (200 chunks, two levels).
SIZES = [0, 1000, 256 * 1024, 3_000_000, 50 * MiB]


def payload(size: int) -> bytes:
    """Deterministic incompressible bytes of ``size``, different for every size."""
    return random.Random(size).randbytes(size)


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ipfs_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    repo = tmp_path_factory.mktemp("ipfs-daemon") / "repo"
    try:
        daemon = start(repo, _free_loopback_port())
    except StorageToolsMissingError as exc:
        missing = str(exc)
    else:
        missing = None
    if missing is not None:
        pytest.fail(f"the storage tests need the real IPFS daemon: {missing}", pytrace=False)
    yield daemon
    stop(daemon)


@pytest.fixture
def kubo_store(ipfs_daemon: RunningDaemon) -> Iterator[KuboStore]:
    with KuboStore(ipfs_daemon.url) as store:
        yield store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "ipfs")


@pytest.fixture(params=SIZES, ids=lambda size: f"{size}B")
def sized_payload(request: pytest.FixtureRequest) -> bytes:
    """One test per size of SIZES."""
    return payload(request.param)


@pytest.fixture(params=["local", "kubo"])
def store(request: pytest.FixtureRequest) -> LocalStore | KuboStore:
    """Each test using it runs once per backend."""
    return request.getfixturevalue(f"{request.param}_store")
