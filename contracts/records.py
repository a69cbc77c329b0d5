"""The values the chain client takes and returns, as typed, immutable records.

Quantities the contracts store as fixed-point integers (accuracy in parts per million, loss
and epsilon times one million) stay integers here, so a value read back compares equal to
the value recorded; :func:`to_micro` and :meth:`RoundMetrics.from_floats` convert floats
once, deterministically, so a retried step records the same integers again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar

from eth_utils import is_address, keccak, to_checksum_address

from contracts.errors import LedgerValueError

if TYPE_CHECKING:
    from flai.settings import Settings

MICRO = 1_000_000

Bytes32 = bytes | str
"""32 bytes, or their hex (64 digits, with or without ``0x``)."""


def to_micro(value: float) -> int:
    """``value`` times one million, rounded to the nearest integer.

    >>> to_micro(0.97312345), to_micro(1.5)
    (973123, 1500000)
    """
    return round(value * MICRO)


def keccak_id(text: str) -> bytes:
    """A bytes32 id derived from a name (keccak-256 of its UTF-8), e.g. for task and query ids.

    >>> keccak_id("heart-fedavg").hex()[:16]
    'bf25235ac2371b23'
    """
    return keccak(text=text)


def to_bytes32(value: Bytes32, field: str) -> bytes:
    """``value`` as 32 bytes.

    >>> to_bytes32("ab" * 32, "sha") == bytes([0xAB]) * 32
    True
    """
    if isinstance(value, str):
        digits = value.removeprefix("0x")
        try:
            value = bytes.fromhex(digits) if len(digits) == 64 else b""
        except ValueError:
            value = b""
    if not isinstance(value, bytes) or len(value) != 32:
        raise LedgerValueError(field, value, "32 bytes or 64 hex digits")
    return value


def check_uint(value: int, bits: int, field: str) -> int:
    """``value`` if it fits an unsigned Solidity integer of ``bits`` bits.

    >>> check_uint(7, 32, "round")
    7
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise LedgerValueError(field, value, f"an integer in [0, 2**{bits})")
    return value


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: its hash (``0x`` hex) and block."""

    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class RecordResult(TxResult):
    """A record call: ``already_recorded`` is True when identical content was there before
    (the transaction changed nothing and emitted no event)."""

    already_recorded: bool


@dataclass(frozen=True)
class BadgeMinted(TxResult):
    token_id: int


@dataclass(frozen=True)
class RoundMetrics:
    """A round's model quality as the contract stores it (``LineageRegistry.Metrics``)."""

    accuracy_ppm: int
    loss_micro: int
    participants: int
    samples: int

    def __post_init__(self) -> None:
        check_uint(self.accuracy_ppm, 32, "accuracy_ppm")
        check_uint(self.loss_micro, 64, "loss_micro")
        check_uint(self.participants, 32, "participants")
        check_uint(self.samples, 64, "samples")

    @classmethod
    def from_floats(cls, accuracy: float, loss: float, participants: int, samples: int) -> RoundMetrics:
        """Metrics from a float accuracy (0..1) and loss.

        >>> RoundMetrics.from_floats(0.9731, 0.25, 3, 1200)
        RoundMetrics(accuracy_ppm=973100, loss_micro=250000, participants=3, samples=1200)
        """
        if not 0.0 <= accuracy <= 1.0:
            raise LedgerValueError("accuracy", accuracy, "a fraction in [0, 1]")
        return cls(to_micro(accuracy), to_micro(loss), participants, samples)

    @property
    def accuracy(self) -> float:
        return self.accuracy_ppm / MICRO

    @property
    def loss(self) -> float:
        return self.loss_micro / MICRO

    def as_tuple(self) -> tuple[int, int, int, int]:
        """The ABI tuple, in the Solidity struct's field order."""
        return (self.accuracy_ppm, self.loss_micro, self.participants, self.samples)


@dataclass(frozen=True)
class TaskInfo:
    task_id: bytes
    owner: str
    registered_block: int
    round_count: int
    spec_cid: str
    dataset_name: str


@dataclass(frozen=True)
class RoundRecord:
    task_id: bytes
    round: int
    model_cid: str
    model_sha256: bytes
    participants_commitment: bytes
    quality_report_hash: bytes
    metrics: RoundMetrics
    recorded_block: int


@dataclass(frozen=True)
class QueryRecord:
    query_id: bytes
    sql_hash: bytes
    participants_commitment: bytes
    result_hash: bytes
    epsilon_spent_micro: int
    suppressed_groups: int
    recorded_block: int

    @property
    def epsilon_spent(self) -> float:
        return self.epsilon_spent_micro / MICRO


@dataclass(frozen=True)
class DatasetRecord:
    """A data set's disclosure policy and privacy budget as ``DisclosureRegistry`` stores it.

    ``budget`` and ``spent`` are in the additive cost unit the charges use (for Gaussian
    mechanisms one million times the sum of 1/z², z the noise multiplier).

    >>> DatasetRecord(bytes(32), b"\\x01" * 32, budget=2_000_000, spent=500_000, registered_block=7).remaining
    1500000
    """

    dataset_id: bytes
    policy_hash: bytes
    budget: int
    spent: int
    registered_block: int

    @property
    def remaining(self) -> int:
        """What is left of the budget."""
        return self.budget - self.spent


def check_address(value: str, field: str) -> str:
    """``value`` as a checksummed EVM address.

    >>> check_address("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf", "to")
    '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf'
    """
    if not isinstance(value, str) or not is_address(value):
        raise LedgerValueError(field, value, "an EVM address")
    return to_checksum_address(value)


# -- governance -------------------------------------------------------------------------------

BPS = 10_000


@dataclass(frozen=True)
class VotingWeights:
    """How a FLAIGovernor weighs a vote, in basis points of each part (``FLAIGovernor.VotingWeights``):
    delegated FLAI, its square root (badge holders only) and badge reputation (badge holders
    only). Each at most 10,000, not all zero.

    >>> VotingWeights.TOKEN, VotingWeights(0, 5_000, 5_000).as_tuple()
    (VotingWeights(token_bps=10000, quadratic_bps=0, reputation_bps=0), (0, 5000, 5000))
    """

    token_bps: int
    quadratic_bps: int
    reputation_bps: int

    TOKEN: ClassVar[VotingWeights]

    def __post_init__(self) -> None:
        for name in ("token_bps", "quadratic_bps", "reputation_bps"):
            if check_uint(getattr(self, name), 16, name) > BPS:
                raise LedgerValueError(name, getattr(self, name), f"at most {BPS} basis points")
        if not any(self.as_tuple()):
            raise LedgerValueError("weights", self, "at least one weight above zero")

    def as_tuple(self) -> tuple[int, int, int]:
        """The ABI tuple, in the Solidity struct's field order."""
        return (self.token_bps, self.quadratic_bps, self.reputation_bps)


VotingWeights.TOKEN = VotingWeights(BPS, 0, 0)
"""Plain token voting: the SuperDAO's weights."""


@dataclass(frozen=True)
class GovernanceParams:
    """A DAO's voting delay and period (blocks), proposal threshold (votes), quorum (percent
    of the largest weight the electorate could cast) and timelock delay (seconds)
    (``SubDAOFactory.GovernanceParams``)."""

    voting_delay_blocks: int
    voting_period_blocks: int
    proposal_threshold: int
    quorum_percent: int
    timelock_delay_s: int

    def __post_init__(self) -> None:
        check_uint(self.voting_delay_blocks, 48, "voting_delay_blocks")
        check_uint(self.voting_period_blocks, 32, "voting_period_blocks")
        check_uint(self.proposal_threshold, 256, "proposal_threshold")
        if check_uint(self.quorum_percent, 256, "quorum_percent") > 100:
            raise LedgerValueError("quorum_percent", self.quorum_percent, "a percentage in [0, 100]")
        check_uint(self.timelock_delay_s, 256, "timelock_delay_s")

    @classmethod
    def from_settings(cls, settings: Settings) -> GovernanceParams:
        """The parameters configured in ``settings`` (``governance_*``)."""
        return cls(
            settings.governance_voting_delay_blocks,
            settings.governance_voting_period_blocks,
            settings.governance_proposal_threshold,
            settings.governance_quorum_percent,
            settings.governance_timelock_delay_s,
        )

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """The ABI tuple, in the Solidity struct's field order."""
        return (
            self.voting_delay_blocks,
            self.voting_period_blocks,
            self.proposal_threshold,
            self.quorum_percent,
            self.timelock_delay_s,
        )


class ProposalState(IntEnum):
    """OpenZeppelin's ``IGovernor.ProposalState``."""

    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


class Support(IntEnum):
    """A vote, as ``GovernorCountingSimple`` counts it."""

    AGAINST = 0
    FOR = 1
    ABSTAIN = 2


class TaskState(IntEnum):
    """``TaskRegistry.TaskState``: where a governed task stands."""

    NONE = 0
    PROPOSED = 1
    APPROVED = 2
    REJECTED = 3
    CANCELLED = 4
    TRAINED = 5
    ACCEPTED = 6
    MODEL_REJECTED = 7
    SETTLED = 8


@dataclass(frozen=True)
class Proposal:
    """A proposal of one DAO (``dao``: ``"super"`` or a domain) and its tally.

    ``quorum`` is None while the vote has not opened (the snapshot is not in the past yet);
    ``eta`` is the timestamp from which a queued proposal can be executed, else 0.
    """

    id: int
    dao: str
    description: str
    state: ProposalState
    for_votes: int
    against_votes: int
    abstain_votes: int
    quorum: int | None
    snapshot: int
    deadline: int
    eta: int


@dataclass(frozen=True)
class GovernedTask:
    """A task of ``TaskRegistry``: its proposal, its escrowed pool, its model's result.

    Metrics are in parts per million; block numbers are 0 until the task was approved or its
    model accepted.
    """

    task_id: bytes
    name: str
    domain: str
    state: TaskState
    modeler: str
    spec_cid: str
    dataset: str
    pool: int
    model_cid: str
    report_cid: str
    accuracy_ppm: int
    auc_ppm: int
    parity_gap_ppm: int
    opportunity_gap_ppm: int
    approved_block: int
    accepted_block: int
