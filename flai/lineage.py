"""Lineage of training rounds: the values the chain records, and a local mirror of the records.

What a round's lineage binds together (``LineageRegistry.recordRound``):

- the model: the CID of its encrypted envelope and the SHA-256 of the plaintext model;
- who contributed: :func:`participants_commitment` over the names in the aggregate;
- the data-quality gate: :func:`combined_quality_hash` over every provider's report hash;
- its federated metrics (accuracy, loss, participant and sample counts).

The chain is the record; :class:`LineageMirror` keeps a copy in DuckDB under
``<data_dir>/lineage.duckdb`` with what the chain does not keep in its state (the transaction
hash, the participants' names), so the task owner can query its history with SQL. A row is
keyed by chain, registry contract, task and round, so re-writing the same record (a retried
task) leaves the table as it was.

A mirror row also holds everything needed to record its round again. :func:`reconcile` says
which mirrored rounds the chain does not confirm (a node restarted from an older state lost
them, or holds them from another transaction), which ``flai lineage --repair`` acts on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from enum import Enum
from pathlib import Path

import duckdb

__all__ = [
    "ChainRound",
    "Discrepancy",
    "Finding",
    "LineageEntry",
    "LineageMirror",
    "combined_quality_hash",
    "model_context",
    "participants_commitment",
    "reconcile",
]

MIRROR_FILE = "lineage.duckdb"
# Nothing may be downloaded at run time (shared/STACK.md, "Network hygiene").
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _sha256_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def participants_commitment(participants: Iterable[str]) -> str:
    """SHA-256 (hex) of the sorted participant names as a compact JSON list.

    A plain hash, with no salt: it binds the round to one participant set (anyone holding the
    set can check it, and it cannot be swapped later) but does not hide the set from someone
    who can guess it. Member names are known within a federation; a Merkle root (membership
    proofs on chain) or a salted hash (hiding) can replace it without changing the contract.

    >>> participants_commitment(["b", "a"]) == participants_commitment(("a", "b"))
    True
    >>> participants_commitment(["a"])[:12]
    '0eb5b8d6f81b'
    """
    return _sha256_json(sorted(participants))


def combined_quality_hash(report_hashes: Mapping[str, str]) -> str:
    """SHA-256 (hex) over each provider's quality report hash, keyed by provider.

    Covers every verdict the gate received, passing or failing, so the chain shows that a
    provider was checked and excluded, not only who passed. Canonical JSON of the mapping
    (sorted keys), so the order the verdicts arrived in does not matter.

    >>> combined_quality_hash({"b": "02", "a": "01"}) == combined_quality_hash({"a": "01", "b": "02"})
    True
    >>> combined_quality_hash({"a": "01"}) == combined_quality_hash({"b": "01"})
    False
    """
    return _sha256_json(dict(report_hashes))


def model_context(task_id: str, round_number: int) -> str:
    """The associated data a round's model envelope is sealed under (``flai.crypto.seal``).

    ``round_number`` counts from 1, as the flow does; the chain's round index is one less.
    Binding the envelope to it means a stored model cannot be passed off as another round's.

    >>> model_context("heart-4-logreg-s0", 3)
    'heart-4-logreg-s0/round-3'
    """
    return f"{task_id}/round-{round_number}"


@dataclass(frozen=True)
class LineageEntry:
    """One recorded round as the mirror keeps it. Hashes are hex without ``0x``."""

    chain_id: int
    registry: str  # address of the LineageRegistry the round is recorded in
    task_id: str  # the task's name; the chain keys it by keccak-256 of this
    round: int  # as on chain: from 0
    model_cid: str
    model_sha256: str
    participants: tuple[str, ...]
    participants_commitment: str
    quality_report_hash: str
    accuracy_ppm: int
    loss_micro: int
    samples: int
    tx_hash: str  # the transaction that recorded the round (not a later no-op retry)
    block_number: int


@dataclass(frozen=True)
class ChainRound:
    """A round as the chain holds it, in the mirror's terms (hashes hex without ``0x``)."""

    model_cid: str
    model_sha256: str
    participants_commitment: str
    quality_report_hash: str
    accuracy_ppm: int
    loss_micro: int
    participants: int  # how many: the chain keeps only their commitment
    samples: int
    tx_hash: str | None  # the transaction that recorded it; None if none is found
    block_number: int | None


class Discrepancy(Enum):
    MISSING = "missing on chain"  # the record is gone: it can be recorded again
    OTHER_TRANSACTION = "recorded by another transaction"  # same content: the mirror is stale
    OTHER_CONTENT = "other content on chain"  # lineage cannot be rewritten


@dataclass(frozen=True)
class Finding:
    """A mirrored round the chain does not confirm; ``on_chain`` is what it holds instead."""

    entry: LineageEntry
    discrepancy: Discrepancy
    on_chain: ChainRound | None


def reconcile(entries: Iterable[LineageEntry], on_chain: Mapping[int, ChainRound]) -> list[Finding]:
    """The mirrored rounds ``entries`` (of one task, chain and registry) that the chain's
    rounds ``on_chain`` (by round) do not confirm, in round order.

    >>> entry = LineageEntry(1, "0xabc", "t", 0, "bafy", "aa", ("x", "y"), "cc", "dd",
    ...                      810000, 450000, 900, "0x01", 7)
    >>> same = ChainRound("bafy", "aa", "cc", "dd", 810000, 450000, 2, 900, "0x01", 7)
    >>> reconcile([entry], {0: same}), [f.discrepancy.name for f in reconcile([entry], {})]
    ([], ['MISSING'])
    >>> moved = ChainRound("bafy", "aa", "cc", "dd", 810000, 450000, 2, 900, "0x02", 9)
    >>> [f.discrepancy.value for f in reconcile([entry], {0: moved})]
    ['recorded by another transaction']
    """
    findings = []
    for entry in sorted(entries, key=lambda e: e.round):
        chain = on_chain.get(entry.round)
        if chain is None:
            findings.append(Finding(entry, Discrepancy.MISSING, None))
        elif _content(entry) != _content(chain):
            findings.append(Finding(entry, Discrepancy.OTHER_CONTENT, chain))
        elif (entry.tx_hash, entry.block_number) != (chain.tx_hash, chain.block_number):
            findings.append(Finding(entry, Discrepancy.OTHER_TRANSACTION, chain))
    return findings


def _content(round: LineageEntry | ChainRound) -> tuple[object, ...]:
    """What the chain records of a round; the mirror keeps the participants' names too."""
    participants = round.participants
    count = len(participants) if isinstance(participants, tuple) else participants
    return (round.model_cid, round.model_sha256, round.participants_commitment,
            round.quality_report_hash, round.accuracy_ppm, round.loss_micro, count, round.samples)


_COLUMNS = tuple(f.name for f in fields(LineageEntry))
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    chain_id BIGINT NOT NULL,
    registry VARCHAR NOT NULL,
    task_id VARCHAR NOT NULL,
    round INTEGER NOT NULL,
    model_cid VARCHAR NOT NULL,
    model_sha256 VARCHAR NOT NULL,
    participants VARCHAR[] NOT NULL,
    participants_commitment VARCHAR NOT NULL,
    quality_report_hash VARCHAR NOT NULL,
    accuracy_ppm BIGINT NOT NULL,
    loss_micro BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    tx_hash VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    PRIMARY KEY (chain_id, registry, task_id, round)
)
"""


class LineageMirror:
    """The task owner's DuckDB copy of recorded rounds, at ``path``.

    Each call opens and closes its own connection: DuckDB lets one process at a time hold a
    database file for writing, and a training job and a ``flai lineage`` run may alternate.
    The embedded chain starts empty in every process, at the same chain id and addresses, so
    a task trained again there replaces its mirrored rounds, as the old chain is gone.

    >>> import tempfile
    >>> mirror = LineageMirror(Path(tempfile.mkdtemp()) / "lineage.duckdb")
    >>> entry = LineageEntry(1, "0xabc", "t", 0, "bafy", "aa", ("x", "y"), "cc", "dd",
    ...                      810000, 450000, 900, "0x01", 7)
    >>> mirror.record(entry); mirror.record(entry)
    >>> mirror.rounds("t") == [entry]
    True
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> LineageMirror:
        """The mirror at ``<data_dir>/lineage.duckdb`` (``settings.data_dir``)."""
        return cls(Path(data_dir) / MIRROR_FILE)

    def record(self, entry: LineageEntry) -> None:
        """Insert ``entry``, replacing the row of the same chain, registry, task and round."""
        values = list(astuple(entry))
        values[_COLUMNS.index("participants")] = list(entry.participants)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO rounds ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                       values)

    def rounds(self, task_id: str) -> list[LineageEntry]:
        """Every mirrored round of ``task_id``, on any chain, by chain, registry and round."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM rounds WHERE task_id = ? "
                "ORDER BY chain_id, registry, round", [task_id]).fetchall()
        participants = _COLUMNS.index("participants")
        return [LineageEntry(*row[:participants], tuple(row[participants]), *row[participants + 1:])
                for row in rows]

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = duckdb.connect(str(self.path), config=_DUCKDB_CONFIG)
        db.execute(_SCHEMA)
        return db
