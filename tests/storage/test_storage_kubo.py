"""KuboStore against the real daemon: pins, presence, and bytes altered inside the daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from multiformats import CID
from multiformats.multibase import get as multibase

from deployments.ipfs import RunningDaemon, start
from flai.storage import (
    KuboStore,
    StorageDaemonError,
    StorageIntegrityError,
    StorageToolsMissingError,
    compute_cid,
)


def test_pin(kubo_store: KuboStore) -> None:
    cid = kubo_store.put(os.urandom(600_000))
    assert not kubo_store.pinned(cid)
    kubo_store.pin(cid)
    assert kubo_store.pinned(cid)


def test_has_only_what_was_put(kubo_store: KuboStore) -> None:
    data = os.urandom(1000)
    cid = compute_cid(data)
    assert not kubo_store.has(cid)
    assert kubo_store.put(data) == cid
    assert kubo_store.has(cid)
    # The scan stopped at the block it found, and closed its stream then, not whenever the
    # garbage collector would (that could be inside the connection pool's lock: a deadlock).
    connections = kubo_store._client._transport._pool.connections
    assert all(connection.is_idle() for connection in connections)


def _flatfs_file(repo: Path, cid: str) -> Path:
    """js-ipfs stores a block under the base32 (upper case, unpadded) of its multihash."""
    key = multibase("base32upper").encode(CID.decode(cid).digest)[1:]
    (path,) = repo.glob(f"blocks/*/{key}.data")
    return path


def test_get_rejects_bytes_the_daemon_altered(
    kubo_store: KuboStore, ipfs_daemon: RunningDaemon
) -> None:
    data = os.urandom(5000)
    cid = kubo_store.put(data)
    path = _flatfs_file(ipfs_daemon.repo_dir, cid)
    tampered = bytearray(path.read_bytes())
    tampered[0] ^= 0xFF
    path.write_bytes(bytes(tampered))
    # js-ipfs serves the altered bytes as they are; KuboStore must not return them.
    with pytest.raises(StorageIntegrityError) as caught:
        kubo_store.get(cid)
    assert caught.value.cid == cid


def test_unreachable_daemon_is_a_typed_error() -> None:
    with KuboStore("http://127.0.0.1:9", timeout_s=2) as store, pytest.raises(StorageDaemonError) as caught:
        store.put(b"x")
    assert caught.value.status is None and caught.value.endpoint == "/add"


def test_missing_tools_fail_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(StorageToolsMissingError, match="npm ci --prefix tools/ipfs"):
        start(tmp_path / "repo", 5999, tools_dir=tmp_path / "no-tools")
