"""Model envelopes, the key store, and publishing/fetching models on both backends."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from flai.crypto import (
    CryptoAuthenticationError,
    CryptoEnvelopeFormatError,
    CryptoKeyLengthError,
    KeyStore,
    KeyStoreExistsError,
    KeyStoreMissingError,
    KeyStorePermissionError,
    KeyStoreTaskIdError,
    ModelIntegrityError,
    PublishedModel,
    fetch_model,
    open_sealed,
    publish_model,
    seal,
)
from flai.storage import ContentStore

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CONTEXT = "task-7/round-3"
MODEL = os.urandom(3_000_000)


def nonce(envelope: bytes) -> bytes:
    return envelope[5:17]


def test_seal_round_trip_and_deterministic_nonce() -> None:
    first, second = seal(MODEL, KEY, CONTEXT), seal(MODEL, KEY, CONTEXT)
    assert first == second  # same key, context and plaintext: the same envelope, the same CID
    assert open_sealed(first, KEY, CONTEXT) == MODEL
    assert MODEL[:64] not in first
    assert open_sealed(seal(b"", KEY, ""), KEY, "") == b""
    # Any other message, or another key, gets another nonce: no nonce serves two messages.
    others = [seal(MODEL, OTHER_KEY, CONTEXT), seal(MODEL, KEY, "task-7/round-4"),
              seal(MODEL[:-1] + bytes([MODEL[-1] ^ 1]), KEY, CONTEXT)]
    assert len({nonce(e) for e in [first, *others]}) == 4


@pytest.mark.parametrize(
    ("key", "context"),
    [(OTHER_KEY, CONTEXT), (KEY, "task-7/round-4"), (KEY, "task-8/round-3")],
    ids=["wrong-key", "wrong-round", "wrong-task"],
)
def test_wrong_key_or_context_does_not_open(key: bytes, context: str) -> None:
    with pytest.raises(CryptoAuthenticationError):
        open_sealed(seal(b"weights", KEY, CONTEXT), key, context)


@pytest.mark.parametrize("offset", [5, 5 + 12, -1], ids=["nonce", "ciphertext", "tag"])
def test_tampered_envelope_does_not_open(offset: int) -> None:
    envelope = bytearray(seal(b"weights", KEY, CONTEXT))
    envelope[offset] ^= 0x01
    with pytest.raises(CryptoAuthenticationError):
        open_sealed(bytes(envelope), KEY, CONTEXT)


def test_malformed_envelopes_and_keys() -> None:
    envelope = seal(b"weights", KEY, CONTEXT)
    with pytest.raises(CryptoEnvelopeFormatError, match="magic"):
        open_sealed(b"XXXX" + envelope[4:], KEY, CONTEXT)
    with pytest.raises(CryptoEnvelopeFormatError, match="version 2"):
        open_sealed(envelope[:4] + b"\x02" + envelope[5:], KEY, CONTEXT)
    with pytest.raises(CryptoEnvelopeFormatError, match="shorter"):
        open_sealed(envelope[:20], KEY, CONTEXT)
    with pytest.raises(CryptoKeyLengthError):
        seal(b"weights", KEY[:16], CONTEXT)


def test_key_store_files(tmp_path: Path) -> None:
    keys = KeyStore.for_data_dir(tmp_path)
    key = keys.create("task-7")
    path = tmp_path / "keys" / "task-7.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["task-7.key"]  # no temporary left
    assert keys.load("task-7") == keys.load_or_create("task-7") == key
    assert keys.load_or_create("task-8") != key
    with pytest.raises(KeyStoreExistsError):
        keys.create("task-7")
    assert keys.load("task-7") == key


def test_key_store_refusals(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    with pytest.raises(KeyStoreMissingError) as missing:
        keys.load("task-9")
    assert missing.value.task_id == "task-9"
    for bad in ("../escape", "", ".hidden", "a/b"):
        with pytest.raises(KeyStoreTaskIdError):
            keys.path(bad)
    key = keys.create("task-7")
    (tmp_path / "keys" / "task-7.key").chmod(0o644)
    with pytest.raises(KeyStorePermissionError) as refused:
        keys.load("task-7")
    assert key.hex() not in str(refused.value)


def test_publish_and_fetch(store: ContentStore) -> None:
    published = publish_model(store, MODEL, KEY, CONTEXT)
    assert published == PublishedModel(published.cid, hashlib.sha256(MODEL).hexdigest(), len(MODEL))
    assert publish_model(store, MODEL, KEY, CONTEXT) == published  # published again: same CID
    assert store.pinned(published.cid)
    assert MODEL[:64] not in store.get(published.cid)  # only ciphertext is stored
    assert fetch_model(store, published.cid, KEY, CONTEXT, published.sha256) == MODEL
    as_bytes32 = bytes.fromhex(published.sha256)  # how web3 returns a bytes32
    assert fetch_model(store, published.cid, KEY, CONTEXT, as_bytes32) == MODEL
    assert fetch_model(store, published.cid, KEY, CONTEXT, "0x" + published.sha256.upper()) == MODEL


def test_fetch_detects_a_model_other_than_the_chain_records(store: ContentStore) -> None:
    published = publish_model(store, MODEL, KEY, CONTEXT)
    recorded = hashlib.sha256(MODEL + b"\x00").hexdigest()
    with pytest.raises(ModelIntegrityError) as caught:
        fetch_model(store, published.cid, KEY, CONTEXT, recorded)
    assert caught.value.expected_sha256 == recorded
    assert caught.value.actual_sha256 == published.sha256


def test_fetch_under_another_key_or_context_fails(store: ContentStore) -> None:
    published = publish_model(store, MODEL, KEY, CONTEXT)
    with pytest.raises(CryptoAuthenticationError):
        fetch_model(store, published.cid, OTHER_KEY, CONTEXT, published.sha256)
    with pytest.raises(CryptoAuthenticationError):
        fetch_model(store, published.cid, KEY, "task-7/round-2", published.sha256)
