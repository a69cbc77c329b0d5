"""FLAI's chain layer: Solidity sources (``src/``), their compiled artifacts (``artifacts/``),
the Python client of the chain (:class:`Ledger`) and control of a local anvil node
(:mod:`contracts.anvil`).

Python needs no Node: the artifacts are committed. Node (``npm ci --prefix contracts``) is
needed only to recompile (``node contracts/compile.mjs``) and to run anvil.
"""

from contracts.compiled import ChainContract
from contracts.errors import (
    LedgerAlreadyClaimedError,
    LedgerBudgetExceededError,
    LedgerConflictError,
    LedgerConnectionError,
    LedgerError,
    LedgerInsufficientFundsError,
    LedgerInvalidProofError,
    LedgerManifestError,
    LedgerNotFoundError,
    LedgerRevertError,
    LedgerTooEarlyError,
    LedgerTransactionFailedError,
    LedgerUnauthorizedError,
    LedgerValueError,
)
from contracts.ledger import STAKING_TERMS, Chain, Ledger, Role, StakingTerms, connect
from contracts.manifest import DeploymentManifest
from contracts.records import (
    BadgeMinted,
    DatasetRecord,
    QueryRecord,
    RecordResult,
    RoundMetrics,
    RoundRecord,
    TaskInfo,
    TxResult,
    keccak_id,
    to_micro,
)

__all__ = [
    "BadgeMinted",
    "Chain",
    "ChainContract",
    "DatasetRecord",
    "DeploymentManifest",
    "Ledger",
    "LedgerAlreadyClaimedError",
    "LedgerBudgetExceededError",
    "LedgerConflictError",
    "LedgerConnectionError",
    "LedgerError",
    "LedgerInsufficientFundsError",
    "LedgerInvalidProofError",
    "LedgerManifestError",
    "LedgerNotFoundError",
    "LedgerRevertError",
    "LedgerTooEarlyError",
    "LedgerTransactionFailedError",
    "LedgerUnauthorizedError",
    "LedgerValueError",
    "QueryRecord",
    "RecordResult",
    "Role",
    "RoundMetrics",
    "RoundRecord",
    "STAKING_TERMS",
    "StakingTerms",
    "TaskInfo",
    "TxResult",
    "connect",
    "keccak_id",
    "to_micro",
]
