"""The embedded content-addressed store: IPFS blocks as files under one directory.

Why: the platform must run with no daemon at all, yet name content exactly as IPFS does, so
switching to a real node later changes configuration, not CIDs. Layout, like Kubo's flatfs::

    <root>/blocks/<2 chars>/<cid>   one file per block, sharded by the CID's next-to-last 2 chars
    <root>/pins/<cid>               an empty marker per recursive pin

Blocks are written to a temporary file and renamed into place, so a reader never sees a
half-written block; ``get`` hashes every block again while reassembling, so a block altered
on disk raises StorageIntegrityError instead of being returned.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from multiformats import CID

from flai.storage.base import ContentStore
from flai.storage.dag import build_file_dag, parse_cid, read_file_dag
from flai.storage.errors import StorageNotFoundError


class LocalStore(ContentStore):
    """IPFS-identical content addressing on the local disk, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self._pins = self.root / "pins"

    def put(self, data: bytes) -> str:
        dag = build_file_dag(data)
        for block in dag.blocks:
            self._write(self._block_path(block.cid), block.data)
        return str(dag.root)

    def get(self, cid: str) -> bytes:
        root = parse_cid(cid)
        return read_file_dag(root, lambda block: self._read(root, block))

    def pin(self, cid: str) -> None:
        self.get(cid)  # the whole DAG must be present and intact before it is kept
        self._write(self._pins / str(parse_cid(cid)), b"")

    def pinned(self, cid: str) -> bool:
        return (self._pins / str(parse_cid(cid))).is_file()

    def has(self, cid: str) -> bool:
        return self._block_path(parse_cid(cid)).is_file()

    def _block_path(self, cid: CID) -> Path:
        name = str(cid)
        return self._blocks / name[-3:-1] / name

    def _read(self, root: CID, cid: CID) -> bytes:
        try:
            return self._block_path(cid).read_bytes()
        except FileNotFoundError as exc:
            raise StorageNotFoundError(str(root), str(cid)) from exc

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
