"""Model encryption: AES-256-GCM envelopes, the task owner's key store, publish and fetch.

Why: models are published to IPFS, where anyone who learns a CID can read the bytes, and the
chain records only CIDs and hashes. So every model is sealed before it leaves its holder,
and only holders of the task's key can open it.

Envelope, version 1 (all lengths in bytes)::

    magic  b"FLAI"  4
    version  0x01   1
    nonce           12   derived, see below (96 bits, as GCM recommends)
    ciphertext+tag  n+16

The associated data is the 5-byte header followed by the caller's context string (e.g.
``"task-7/round-3"``), so an envelope cannot be passed off as another task's or round's
model, nor downgraded to another version: opening it under any other context, with any
other key, or after any byte changed, fails with CryptoAuthenticationError.

The nonce is synthetic, as in SIV modes: HMAC-SHA256 under the envelope's key of a label,
the plaintext's SHA-256 and the associated data, cut to 96 bits. Why: sealing is then a
function of (key, context, plaintext), so a round's model published again (a retried
publish step, a resumed job) gets the same envelope, hence the same CID, and the chain's
record of the round is identical, a no-op instead of a conflict. Why it is safe: GCM fails
when one nonce serves two *different* messages under one key; here the nonce is a PRF of the
whole message (associated data and plaintext: one model sealed under two contexts must not
share a nonce either, or the two tags would give away GCM's authentication key), so two
different messages share a nonce only by a 96-bit collision, the same bound as random nonces
(safe for 2**32 envelopes per key; a key serves one task). Equal messages give equal envelopes, which tells an observer only that
two envelopes hold the same model for the same task and round: the chain publishes the
plaintext's SHA-256 anyway. The label keeps this use of the key apart from any other.

Keys: one 256-bit key per task, kept by the task owner in ``<data_dir>/keys/<task_id>.key``
(32 raw bytes, file mode 0600, directory 0700). A key is never logged, never put in an error
message, never sent to the chain or to IPFS, and never passed as a Prefect flow parameter
(those are stored by the server): a task loads it from the KeyStore where it is used, and
the owner hands it to providers out of band. A key file readable by group or others is
refused, as ssh refuses such private keys.

Example:
    >>> key = bytes(32)
    >>> envelope = seal(b"weights", key, "task-7/round-3")
    >>> envelope[:5], len(envelope) - len(b"weights")
    (b'FLAI\\x01', 33)
    >>> envelope == seal(b"weights", key, "task-7/round-3")  # deterministic
    True
    >>> open_sealed(envelope, key, "task-7/round-3")
    b'weights'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flai.storage.base import ContentStore

MAGIC = b"FLAI"
VERSION = 1
HEADER = MAGIC + bytes([VERSION])
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
NONCE_LABEL = b"FLAI envelope nonce v1\x00"
TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CryptoError(Exception):
    """Base class of every FLAI encryption error."""


class CryptoKeyLengthError(CryptoError, ValueError):
    """A key is not 32 bytes (AES-256)."""

    def __init__(self, length: int) -> None:
        super().__init__(f"an AES-256 key has {KEY_SIZE} bytes, this one has {length}")
        self.length = length


class CryptoEnvelopeFormatError(CryptoError):
    """The bytes are not a FLAI envelope of a version this code reads."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a FLAI envelope: {reason}")
        self.reason = reason


class CryptoAuthenticationError(CryptoError):
    """Wrong key, wrong context, or the envelope was altered (GCM cannot tell which)."""

    def __init__(self, context: str) -> None:
        super().__init__(
            f"envelope does not open under context {context!r}: wrong key, wrong context or tampered"
        )
        self.context = context


class KeyStoreError(CryptoError):
    """Base class of the key store's errors; each carries the task id and the file path."""

    def __init__(self, task_id: str, path: Path, problem: str) -> None:
        super().__init__(f"key of task {task_id!r} at {path}: {problem}")
        self.task_id = task_id
        self.path = path


class KeyStoreTaskIdError(KeyStoreError, ValueError):
    """A task id that is not a safe file name."""


class KeyStoreMissingError(KeyStoreError, KeyError):
    """No key is stored for the task."""

    def __str__(self) -> str:  # KeyError would print the repr of the first argument
        return self.args[0]


class KeyStoreExistsError(KeyStoreError):
    """A key for the task exists already; it is never overwritten."""


class KeyStorePermissionError(KeyStoreError, PermissionError):
    """The key file is readable or writable by group or others."""


class ModelIntegrityError(CryptoError):
    """The decrypted model is not the one the chain recorded (its sha256 differs)."""

    def __init__(self, cid: str, expected_sha256: str, actual_sha256: str) -> None:
        super().__init__(f"model {cid}: sha256 {actual_sha256}, chain records {expected_sha256}")
        self.cid = cid
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise CryptoKeyLengthError(len(key))
    return AESGCM(key)


def _nonce(key: bytes, associated_data: bytes, plaintext: bytes) -> bytes:
    """The synthetic nonce of one message (see the module's docstring for why it is safe).

    The digest has a fixed length, so label, digest and associated data cannot be re-split
    into another message's input.
    """
    digest = hashlib.sha256(plaintext).digest()
    return hmac.digest(key, NONCE_LABEL + digest + associated_data, "sha256")[:NONCE_SIZE]


def seal(plaintext: bytes, key: bytes, context: str) -> bytes:
    """Encrypt ``plaintext`` under ``key`` into a version-1 envelope bound to ``context``.

    Deterministic: the same plaintext, key and context always give the same envelope.
    """
    aead = _aead(key)
    associated_data = HEADER + context.encode()
    nonce = _nonce(key, associated_data, plaintext)
    return HEADER + nonce + aead.encrypt(nonce, plaintext, associated_data)


def open_sealed(envelope: bytes, key: bytes, context: str) -> bytes:
    """The plaintext of an envelope made by ``seal`` with the same key and context."""
    aead = _aead(key)
    if len(envelope) < len(HEADER) + NONCE_SIZE + TAG_SIZE:
        raise CryptoEnvelopeFormatError(f"{len(envelope)} bytes is shorter than an empty envelope")
    if envelope[: len(MAGIC)] != MAGIC:
        raise CryptoEnvelopeFormatError("no FLAI magic")
    if envelope[len(MAGIC)] != VERSION:
        raise CryptoEnvelopeFormatError(f"version {envelope[len(MAGIC)]}, this code reads {VERSION}")
    nonce = envelope[len(HEADER) : len(HEADER) + NONCE_SIZE]
    try:
        return aead.decrypt(nonce, envelope[len(HEADER) + NONCE_SIZE :], HEADER + context.encode())
    except InvalidTag as exc:
        raise CryptoAuthenticationError(context) from exc


class KeyStore:
    """Per-task AES-256 keys of the task owner, one 0600 file each under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> KeyStore:
        """The store at ``<data_dir>/keys`` (``settings.data_dir``)."""
        return cls(Path(data_dir) / "keys")

    def path(self, task_id: str) -> Path:
        if not TASK_ID.fullmatch(task_id):
            raise KeyStoreTaskIdError(task_id, self.root, "task id must match " + TASK_ID.pattern)
        return self.root / f"{task_id}.key"

    def create(self, task_id: str) -> bytes:
        """A fresh random key for ``task_id``, stored 0600; KeyStoreExistsError if one exists."""
        path = self.path(task_id)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=8 * KEY_SIZE)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")  # created 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # atomic, and refuses to replace: a reader never sees half a key
        except FileExistsError as exc:
            raise KeyStoreExistsError(task_id, path, "exists already; keys are never overwritten") from exc
        finally:
            os.unlink(tmp)
        return key

    def load(self, task_id: str) -> bytes:
        """The stored key of ``task_id``; refuses files open to group or others."""
        path = self.path(task_id)
        try:
            with path.open("rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                key = f.read()
        except FileNotFoundError as exc:
            raise KeyStoreMissingError(task_id, path, "no key stored") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStorePermissionError(task_id, path, f"mode {stat.filemode(mode)}, must be -rw-------")
        if len(key) != KEY_SIZE:
            raise KeyStoreError(task_id, path, f"holds {len(key)} bytes, not {KEY_SIZE}")
        return key

    def load_or_create(self, task_id: str) -> bytes:
        """The key of ``task_id``, created on first use (safe if two processes race)."""
        try:
            return self.load(task_id)
        except KeyStoreMissingError:
            pass
        try:
            return self.create(task_id)
        except KeyStoreExistsError:
            return self.load(task_id)


@dataclass(frozen=True)
class PublishedModel:
    """What the chain records about a published model: where it is, what it must hash to."""

    cid: str  # of the envelope
    sha256: str  # hex, of the plaintext model
    size: int  # bytes of the plaintext model


def publish_model(store: ContentStore, model_bytes: bytes, key: bytes, context: str) -> PublishedModel:
    """Seal ``model_bytes`` under ``key`` and ``context``, store and pin the envelope."""
    cid = store.put(seal(model_bytes, key, context))
    store.pin(cid)
    return PublishedModel(cid, hashlib.sha256(model_bytes).hexdigest(), len(model_bytes))


def fetch_model(
    store: ContentStore, cid: str, key: bytes, context: str, expected_sha256: str | bytes
) -> bytes:
    """The model at ``cid``, opened and checked against the sha256 the chain recorded.

    ``expected_sha256`` is hex (``0x`` allowed) or the 32 raw bytes of a ``bytes32``.
    Raises ModelIntegrityError when the decrypted model hashes to anything else.
    """
    expected = expected_sha256.hex() if isinstance(expected_sha256, bytes) else expected_sha256
    expected = expected.lower().removeprefix("0x")
    model = open_sealed(store.get(cid), key, context)
    actual = hashlib.sha256(model).hexdigest()
    if actual != expected:
        raise ModelIntegrityError(cid, expected, actual)
    return model
