"""The one interface every FLAI storage backend offers.

Why an interface: the embedded default (``LocalStore``) and a real IPFS daemon
(``KuboStore``) must be interchangeable by configuration alone, and both must name content
by the same CID, so that a CID recorded on chain resolves on either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class ContentStore(ABC):
    """Immutable bytes addressed by their IPFS CIDv1 (raw leaves, 256 KiB chunks, base32)."""

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data``; return its CID, the same one ``ipfs add --cid-version=1`` gives."""

    @abstractmethod
    def get(self, cid: str) -> bytes:
        """The bytes named by ``cid``, every block re-verified against its hash.

        Raises StorageNotFoundError when content is absent and StorageIntegrityError when
        what was read does not hash to ``cid``; altered bytes are never returned.
        """

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` and every block under it (it must be complete in the store)."""

    @abstractmethod
    def pinned(self, cid: str) -> bool:
        """Whether ``cid`` is pinned (recursively)."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the root block of ``cid`` is held locally (nothing is fetched)."""
