"""A ContentStore on a Kubo-compatible IPFS daemon, spoken to over its RPC API.

Why plain HTTP and not ``ipfshttpclient``: 0.7.0 refuses every daemon newer than 0.8.0 in
``connect()`` and cannot ask for base32 CIDs, while the RPC API is a handful of POSTs.
Tested against js-ipfs 0.66 (``tools/ipfs``), which serves the same API as Kubo.

The daemon is trusted for nothing: ``put`` recomputes the CID locally and refuses a daemon
that lays files out differently (another chunker, CIDv0, no raw leaves), and ``get``
recomputes the CID of the bytes it received before returning them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing

import httpx
from multiformats import CID

from flai.storage.base import ContentStore
from flai.storage.dag import CHUNK_SIZE, HASH, build_file_dag, parse_cid
from flai.storage.errors import StorageDaemonError, StorageIntegrityError

# What makes the daemon's CID the one build_file_dag computes.
ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": f"size-{CHUNK_SIZE}",
    "hash": HASH,
    "cid-base": "base32",
    "pin": "false",  # pinning is explicit, as in LocalStore
}


class KuboStore(ContentStore):
    """Content on the IPFS node whose RPC API is at ``api_url`` (e.g. http://127.0.0.1:5001).

    ``timeout_s`` bounds every request; a daemon that looks for absent content on the
    network (or, offline, waits for it) fails with StorageDaemonError after that long.
    """

    def __init__(self, api_url: str, timeout_s: float = 60.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._client = httpx.Client(base_url=f"{self.api_url}/api/v0", timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def put(self, data: bytes) -> str:
        expected = build_file_dag(data).root
        response = self._post("/add", params=ADD_PARAMS, files={"file": ("blob", data)})
        # One JSON object per line (progress, then the file); the last line names the root.
        added = parse_cid(json.loads(response.text.strip().splitlines()[-1])["Hash"])
        if added != expected:
            raise StorageIntegrityError(
                str(expected), str(added), "the daemon laid the file out differently"
            )
        return str(expected)

    def get(self, cid: str) -> bytes:
        root = parse_cid(cid)
        data = self._post("/cat", params={"arg": str(root)}).content
        received = build_file_dag(data).root
        if received != root:
            raise StorageIntegrityError(str(root), str(received), "the daemon returned other bytes")
        return data

    def pin(self, cid: str) -> None:
        self._post("/pin/add", params={"arg": str(parse_cid(cid)), "recursive": "true"})

    def pinned(self, cid: str) -> bool:
        wanted = parse_cid(cid)
        keys = self._post("/pin/ls", params={"type": "recursive"}).json()["Keys"]
        return any(CID.decode(key) == wanted for key in keys)

    def has(self, cid: str) -> bool:
        """Scans the node's local block list (``refs/local``).

        Why a scan: ``block/stat`` on an absent block searches the network on Kubo and
        waits until the timeout on js-ipfs, and only Kubo understands ``offline=true``.
        The daemon stores blocks by multihash, so the comparison is by multihash.
        """
        wanted = parse_cid(cid).digest
        # Closed here, found or not: a generator left open would close its stream whenever it
        # is collected, possibly inside the connection pool's lock (a deadlock seen in CI).
        with closing(self._local_refs()) as refs:
            return any(CID.decode(ref).digest == wanted for ref in refs)

    def _local_refs(self) -> Iterator[str]:
        endpoint = "/refs/local"
        try:
            with self._client.stream("POST", endpoint) as response:
                if response.is_error:
                    response.read()
                    self._raise_for_status(endpoint, response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)["Ref"]
        except httpx.TransportError as exc:
            raise StorageDaemonError(self.api_url, endpoint, None, repr(exc)) from exc

    def _post(self, endpoint: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._client.post(endpoint, **kwargs)
        except httpx.TransportError as exc:
            raise StorageDaemonError(self.api_url, endpoint, None, repr(exc)) from exc
        if response.is_error:
            self._raise_for_status(endpoint, response)
        return response

    def _raise_for_status(self, endpoint: str, response: httpx.Response) -> None:
        """Raise the daemon's own error message (its JSON ``Message``) as StorageDaemonError."""
        try:
            message = response.json()["Message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise StorageDaemonError(self.api_url, endpoint, response.status_code, message)
