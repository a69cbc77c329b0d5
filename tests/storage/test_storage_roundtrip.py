"""Both backends return what was put, and name it with the CID the daemon computes."""

from __future__ import annotations

import json

import httpx
from multiformats import CID

from deployments.ipfs import RunningDaemon
from flai.storage import ContentStore, LocalStore, compute_cid


def test_round_trip(store: ContentStore, sized_payload: bytes) -> None:
    cid = store.put(sized_payload)
    assert cid.startswith("bafk" if len(sized_payload) <= 256 * 1024 else "bafy")
    assert store.has(cid)
    assert store.get(cid) == sized_payload


def test_local_cid_is_the_daemons(
    local_store: LocalStore, ipfs_daemon: RunningDaemon, sized_payload: bytes
) -> None:
    """Ask the daemon itself (raw RPC, not KuboStore, which trusts compute_cid)."""
    response = httpx.post(
        f"{ipfs_daemon.url}/api/v0/add",
        params={"cid-version": "1", "raw-leaves": "true", "chunker": "size-262144"},
        files={"file": ("blob", sized_payload)},
        timeout=120,
    )
    response.raise_for_status()
    daemon_cid = CID.decode(json.loads(response.text.strip().splitlines()[-1])["Hash"])
    local_cid = local_store.put(sized_payload)
    assert CID.decode(local_cid) == daemon_cid
    assert local_cid == str(daemon_cid.set(base="base32")) == compute_cid(sized_payload)


def test_known_kubo_cids() -> None:
    """Values published by Kubo itself (the empty file is IPFS's best-known raw CID)."""
    assert compute_cid(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert compute_cid(b"hello world") == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_same_bytes_same_cid_across_backends(store: ContentStore) -> None:
    data = b"federated" * 100_000
    assert store.put(data) == compute_cid(data) == store.put(data)
