"""FLAI's content-addressed storage: IPFS CIDs, on local disk or on an IPFS daemon.

``open_store(settings)`` picks the backend from configuration: ``settings.ipfs_api`` unset
keeps blocks under ``settings.data_dir / "ipfs"`` (``LocalStore``); set, it talks to that
Kubo-compatible RPC API (``KuboStore``). Both give the same bytes the same CID.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> store = LocalStore(Path(tempfile.mkdtemp()))
    >>> cid = store.put(b"hello")
    >>> cid, store.get(cid), compute_cid(b"hello") == cid
    ('bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq', b'hello', True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flai.storage.base import ContentStore
from flai.storage.dag import compute_cid
from flai.storage.errors import (
    StorageCidError,
    StorageDaemonError,
    StorageDaemonStartError,
    StorageError,
    StorageIntegrityError,
    StorageNotFoundError,
    StorageToolsMissingError,
)
from flai.storage.kubo import KuboStore
from flai.storage.local import LocalStore

if TYPE_CHECKING:
    from flai.settings import Settings

__all__ = [
    "ContentStore",
    "KuboStore",
    "LocalStore",
    "StorageCidError",
    "StorageDaemonError",
    "StorageDaemonStartError",
    "StorageError",
    "StorageIntegrityError",
    "StorageNotFoundError",
    "StorageToolsMissingError",
    "compute_cid",
    "open_store",
]


def open_store(settings: Settings) -> ContentStore:
    """The store the settings name: a KuboStore at ``ipfs_api``, else a LocalStore."""
    if settings.ipfs_api is None:
        return LocalStore(settings.data_dir / "ipfs")
    return KuboStore(settings.ipfs_api)
