"""Typed errors of FLAI's content-addressed storage.

Every error carries the CID (or daemon URL) it is about, so a caller can log or retry
without parsing messages.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class: something about stored content went wrong."""


class StorageCidError(StorageError, ValueError):
    """A CID string cannot be parsed, or uses a codec or hash this store does not handle."""

    def __init__(self, cid: str, reason: str) -> None:
        super().__init__(f"unusable CID {cid!r}: {reason}")
        self.cid = cid
        self.reason = reason


class StorageNotFoundError(StorageError, KeyError):
    """A block the content needs is not held by the store."""

    def __init__(self, cid: str, block: str | None = None) -> None:
        missing = cid if block is None or block == cid else f"block {block} of {cid}"
        super().__init__(f"not in the store: {missing}")
        self.cid = cid
        self.block = block or cid

    def __str__(self) -> str:  # KeyError would print the repr of the first argument
        return self.args[0]


class StorageIntegrityError(StorageError):
    """Bytes read back do not hash to the CID they were stored under: never returned."""

    def __init__(self, cid: str, block: str, detail: str) -> None:
        super().__init__(f"integrity check failed for {cid} at block {block}: {detail}")
        self.cid = cid
        self.block = block
        self.detail = detail


class StorageDaemonError(StorageError):
    """The IPFS RPC daemon refused a request or could not be reached."""

    def __init__(self, url: str, endpoint: str, status: int | None, message: str) -> None:
        where = f"{url}{endpoint}"
        status_text = "unreachable" if status is None else f"HTTP {status}"
        super().__init__(f"IPFS daemon {where}: {status_text}: {message}")
        self.url = url
        self.endpoint = endpoint
        self.status = status
        self.message = message


class StorageToolsMissingError(StorageError):
    """The pinned IPFS daemon (tools/ipfs) is not installed; the message says how to install it."""

    def __init__(self, missing: str, install: str) -> None:
        super().__init__(f"{missing} is missing; install the IPFS daemon with: {install}")
        self.missing = missing
        self.install = install


class StorageDaemonStartError(StorageError):
    """The IPFS daemon exited or did not answer in time; carries the tail of its log."""

    def __init__(self, url: str, reason: str, log_tail: str) -> None:
        super().__init__(f"IPFS daemon at {url} did not start: {reason}\n--- daemon log ---\n{log_tail}")
        self.url = url
        self.reason = reason
        self.log_tail = log_tail
