"""FLAI's chain layer: Solidity sources (``src/``), their compiled artifacts (``artifacts/``),
the Python client of the chain (:class:`Ledger`), of its DAOs and governed tasks
(:class:`Governance`), of the inference market and the FLAI/WETH pool (:class:`Market`) and
control of a local anvil node (:mod:`contracts.anvil`).

Python needs no Node: the artifacts are committed. Node (``npm ci --prefix contracts``) is
needed only to recompile (``node contracts/compile.mjs``) and to run anvil.
"""

from contracts.compiled import ChainContract
from contracts.errors import (
    LedgerAlreadyClaimedError,
    LedgerAlreadyVotedError,
    LedgerBudgetExceededError,
    LedgerConflictError,
    LedgerConnectionError,
    LedgerDeadlinePassedError,
    LedgerError,
    LedgerInsufficientFundsError,
    LedgerInvalidProofError,
    LedgerManifestError,
    LedgerNotFoundError,
    LedgerPriceTooHighError,
    LedgerRevertError,
    LedgerTooEarlyError,
    LedgerTransactionFailedError,
    LedgerUnauthorizedError,
    LedgerUnexpectedStateError,
    LedgerValueError,
)
from contracts.governance import SUPER, Governance, advance
from contracts.ledger import MARKET_FEE_BPS, STAKING_TERMS, Chain, Ledger, Role, StakingTerms, connect
from contracts.manifest import DeploymentManifest
from contracts.market import Market
from contracts.records import (
    BadgeMinted,
    DatasetRecord,
    GovernanceParams,
    GovernedTask,
    Proposal,
    ProposalState,
    QueryRecord,
    RecordResult,
    RoundMetrics,
    RoundRecord,
    Support,
    TaskInfo,
    TaskState,
    TxResult,
    VotingWeights,
    keccak_id,
    to_micro,
)

__all__ = [
    "BadgeMinted",
    "Chain",
    "ChainContract",
    "DatasetRecord",
    "DeploymentManifest",
    "Governance",
    "GovernanceParams",
    "GovernedTask",
    "Ledger",
    "LedgerAlreadyClaimedError",
    "LedgerAlreadyVotedError",
    "LedgerBudgetExceededError",
    "LedgerConflictError",
    "LedgerConnectionError",
    "LedgerDeadlinePassedError",
    "LedgerError",
    "LedgerInsufficientFundsError",
    "LedgerInvalidProofError",
    "LedgerManifestError",
    "LedgerNotFoundError",
    "LedgerPriceTooHighError",
    "LedgerRevertError",
    "LedgerTooEarlyError",
    "LedgerTransactionFailedError",
    "LedgerUnauthorizedError",
    "LedgerUnexpectedStateError",
    "LedgerValueError",
    "MARKET_FEE_BPS",
    "Market",
    "Proposal",
    "ProposalState",
    "QueryRecord",
    "RecordResult",
    "Role",
    "RoundMetrics",
    "RoundRecord",
    "STAKING_TERMS",
    "SUPER",
    "StakingTerms",
    "Support",
    "TaskInfo",
    "TaskState",
    "TxResult",
    "VotingWeights",
    "advance",
    "connect",
    "keccak_id",
    "to_micro",
]
