"""LocalStore on disk: tampering, missing blocks, pins, bad CIDs, and open_store's choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from flai.settings import Settings
from flai.storage import (
    KuboStore,
    LocalStore,
    StorageCidError,
    StorageIntegrityError,
    StorageNotFoundError,
    open_store,
)
from flai.storage.dag import CHUNK_SIZE, build_file_dag

THREE_CHUNKS = bytes(range(256)) * (3 * CHUNK_SIZE // 256)


def _block_file(store: LocalStore, cid: str) -> Path:
    (path,) = store.root.glob(f"blocks/*/{cid}")
    return path


@pytest.mark.parametrize("which", ["leaf", "root"])
def test_tampered_block_is_detected(local_store: LocalStore, which: str) -> None:
    dag = build_file_dag(THREE_CHUNKS)
    cid = local_store.put(THREE_CHUNKS)
    target = str(dag.blocks[1].cid) if which == "leaf" else cid
    path = _block_file(local_store, target)
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))
    with pytest.raises(StorageIntegrityError) as caught:
        local_store.get(cid)
    assert caught.value.cid == cid and caught.value.block == target
    with pytest.raises(StorageIntegrityError):
        local_store.pin(cid)
    assert not local_store.pinned(cid)


def test_swapped_block_is_detected(local_store: LocalStore) -> None:
    """A block replaced by another valid block of the same file still fails its own hash."""
    dag = build_file_dag(THREE_CHUNKS + b"x")
    cid = local_store.put(THREE_CHUNKS + b"x")
    first, last = (_block_file(local_store, str(dag.blocks[i].cid)) for i in (0, 3))
    first.write_bytes(last.read_bytes())
    with pytest.raises(StorageIntegrityError):
        local_store.get(cid)


def test_missing_block_is_reported(local_store: LocalStore) -> None:
    dag = build_file_dag(THREE_CHUNKS)
    cid = local_store.put(THREE_CHUNKS)
    _block_file(local_store, str(dag.blocks[2].cid)).unlink()
    assert local_store.has(cid)  # the root is there, a leaf is not
    with pytest.raises(StorageNotFoundError) as caught:
        local_store.get(cid)
    assert caught.value.block == str(dag.blocks[2].cid)
    with pytest.raises(StorageNotFoundError):
        local_store.pin(cid)


def test_put_is_idempotent_and_heals(local_store: LocalStore) -> None:
    cid = local_store.put(THREE_CHUNKS)
    _block_file(local_store, cid).write_bytes(b"garbage")
    assert local_store.put(THREE_CHUNKS) == cid
    assert local_store.get(cid) == THREE_CHUNKS


def test_pin(local_store: LocalStore) -> None:
    cid = local_store.put(b"model")
    assert not local_store.pinned(cid)
    local_store.pin(cid)
    assert local_store.pinned(cid)
    assert LocalStore(local_store.root).pinned(cid)  # survives a restart


def test_unknown_and_invalid_cids(local_store: LocalStore) -> None:
    absent = LocalStore(local_store.root.parent / "other").put(b"elsewhere")
    assert not local_store.has(absent)
    with pytest.raises(StorageNotFoundError):
        local_store.get(absent)
    with pytest.raises(StorageCidError):
        local_store.get("not-a-cid")
    with pytest.raises(StorageCidError, match="codec dag-cbor"):
        local_store.get("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")


def test_cidv0_and_base58_name_the_same_block(local_store: LocalStore) -> None:
    cid = local_store.put(b"")
    assert local_store.get("zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW") == b""
    assert local_store.has(cid)


def test_open_store_follows_settings(tmp_path: Path) -> None:
    local = open_store(Settings(data_dir=tmp_path, ipfs_api=None))
    assert isinstance(local, LocalStore) and local.root == tmp_path.resolve() / "ipfs"
    remote = open_store(Settings(data_dir=tmp_path, ipfs_api="http://127.0.0.1:5001"))
    assert isinstance(remote, KuboStore) and remote.api_url == "http://127.0.0.1:5001"
    remote.close()
