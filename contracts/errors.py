"""Typed errors of the chain client.

A contract revert becomes a :class:`LedgerRevertError` that names the Solidity custom error
and its decoded arguments; the errors callers act on (a conflicting record, a missing role, a
missing record) get their own subclasses so that a task can catch them without matching
strings. Which Solidity error maps to which subclass is the table :data:`REVERT_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LedgerError(Exception):
    """Base of every error raised by the chain client."""


class LedgerValueError(LedgerError, ValueError):
    """An argument cannot be sent to the chain (wrong length, out of range, not an address)."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(f"{field}={value!r}: expected {expected}")
        self.field = field
        self.value = value
        self.expected = expected


class LedgerConnectionError(LedgerError, ConnectionError):
    """The JSON-RPC node does not answer (refused, reset, timed out), whatever was asked of it.

    A ``ConnectionError`` too, so that retry conditions written for transport failures
    (``OSError``) keep retrying it. ``method`` is the JSON-RPC method that failed, if known.
    """

    def __init__(self, url: str, detail: str, method: str | None = None) -> None:
        asked = f" ({method})" if method else ""
        super().__init__(f"no EVM node answers at {url}{asked}: {detail}")
        self.url = url
        self.detail = detail
        self.method = method

    def __reduce__(self) -> tuple[type, tuple[str, str, str | None]]:
        return type(self), (self.url, self.detail, self.method)  # Prefect and Ray pickle errors


class LedgerManifestError(LedgerError):
    """A deployment manifest is unreadable or does not describe the chain it is used with."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"deployment manifest {path}: {problem}")
        self.path = path
        self.problem = problem


class LedgerRevertError(LedgerError):
    """A contract call or transaction reverted.

    ``error`` is the Solidity error's name (``"LineageRegistryRoundConflict"``, ``"Error"``
    for ``require`` strings, ``"Panic"``), ``arguments`` its decoded arguments by name.
    """

    def __init__(self, contract: str, function: str, error: str, arguments: Mapping[str, Any]) -> None:
        shown = ", ".join(f"{name}={_show(value)}" for name, value in arguments.items())
        super().__init__(f"{contract}.{function} reverted with {error}({shown})")
        self.contract = contract
        self.function = function
        self.error = error
        self.arguments = dict(arguments)


class LedgerConflictError(LedgerRevertError):
    """The key is already recorded with different content (lineage cannot be rewritten)."""


class LedgerUnauthorizedError(LedgerRevertError):
    """The sender lacks the role (or ownership) the function requires."""


class LedgerNotFoundError(LedgerRevertError):
    """The task, round, query, data set or token asked for does not exist."""


class LedgerBudgetExceededError(LedgerRevertError):
    """A privacy or extraction budget would be passed: a query's privacy cost exceeds what is
    left of its data set's budget (``arguments``: ``datasetId``, ``cost`` and ``remaining``, in
    the additive cost unit), or a consumer's rows on a model would pass the model's row budget
    (``modelId``, ``consumer``, ``requested`` and ``budget``, in rows).
    """


class LedgerInsufficientFundsError(LedgerRevertError):
    """What is asked for exceeds what there is: a reward pool short of an epoch's total
    (``arguments``: ``total``, ``available``), a stake short of the amount to unbond or slash
    (``requested``, ``available``)."""


class LedgerAlreadyClaimedError(LedgerRevertError):
    """What is paid once has been paid: a reward leaf (``arguments``: ``epoch``, ``index``),
    a governed task's pool (``taskId``)."""


class LedgerAlreadyVotedError(LedgerRevertError):
    """The account (``arguments["voter"]``) has already voted on the proposal."""


class LedgerUnexpectedStateError(LedgerRevertError):
    """The proposal, timelock operation or governed task is not in a state that allows the
    call: a vote on a proposal not active, queueing one that did not succeed, executing
    before the timelock's delay, approving a task twice. ``arguments`` holds the current
    state where the contract gives it (``current``)."""


class LedgerInvalidProofError(LedgerRevertError):
    """The Merkle proof does not place the claimed leaf under its epoch's root: a wrong
    account or amount, or a proof of another epoch."""


class LedgerTooEarlyError(LedgerRevertError):
    """The action is allowed only from a later time, a block timestamp: withdrawing unbonding
    stake before its delay has passed (``arguments["withdrawableAt"]``), a consumer refunding
    an inference request before its deadline (``refundableAfter``)."""


class LedgerDeadlinePassedError(LedgerRevertError):
    """The action was allowed only until a deadline that has passed: releasing an inference
    request after its ``deadline`` (it can only be refunded now)."""


class LedgerPriceTooHighError(LedgerRevertError):
    """The price now exceeds what the buyer accepts: an inference request's quote above its
    ``maxPrice`` (``arguments``: ``price``, ``maxPrice``)."""


class LedgerTransactionFailedError(LedgerError):
    """A transaction was mined but failed, or no receipt came in time, for a reason the chain did not give."""

    def __init__(self, contract: str, function: str, tx_hash: str | None, detail: str) -> None:
        super().__init__(f"{contract}.{function} (tx {tx_hash}) failed: {detail}")
        self.contract = contract
        self.function = function
        self.tx_hash = tx_hash


class LedgerNotDurableError(LedgerTransactionFailedError):
    """A transaction was mined but did not become durable: it was not written to the local
    node's state file, or did not gather the configured confirmations in time. It is not
    acknowledged; sending it again is safe, as every record is idempotent."""


REVERT_KINDS: Mapping[str, type[LedgerRevertError]] = {
    "AccessControlUnauthorizedAccount": LedgerUnauthorizedError,
    "OwnableUnauthorizedAccount": LedgerUnauthorizedError,
    "ContributionBadgeUnauthorizedBurn": LedgerUnauthorizedError,
    "TaskRegistryUnauthorizedCaller": LedgerUnauthorizedError,
    "GovernorInsufficientProposerVotes": LedgerUnauthorizedError,
    "GovernorRestrictedProposer": LedgerUnauthorizedError,
    "GovernorOnlyExecutor": LedgerUnauthorizedError,
    "GovernorUnableToCancel": LedgerUnauthorizedError,
    "TimelockUnauthorizedCaller": LedgerUnauthorizedError,
    "InferenceMarketUnauthorizedRefund": LedgerUnauthorizedError,
    "LineageRegistryTaskConflict": LedgerConflictError,
    "LineageRegistryRoundConflict": LedgerConflictError,
    "LineageRegistryQueryConflict": LedgerConflictError,
    "ContributionBadgeAlreadyHeld": LedgerConflictError,
    "DisclosureRegistryPolicyConflict": LedgerConflictError,
    "DisclosureRegistryChargeConflict": LedgerConflictError,
    "RewardDistributorEpochAlreadyPosted": LedgerConflictError,
    "SubDAOFactoryDomainExists": LedgerConflictError,
    "TaskRegistryTaskConflict": LedgerConflictError,
    "TaskRegistryResultConflict": LedgerConflictError,
    "InferenceMarketRequestConflict": LedgerConflictError,
    "InferenceMarketSharesConflict": LedgerConflictError,
    "InferenceMarketRequestEnded": LedgerConflictError,
    "LineageRegistryUnknownTask": LedgerNotFoundError,
    "LineageRegistryUnknownRound": LedgerNotFoundError,
    "LineageRegistryUnknownQuery": LedgerNotFoundError,
    "ContributionBadgeNotHeld": LedgerNotFoundError,
    "ERC721NonexistentToken": LedgerNotFoundError,
    "DisclosureRegistryUnknownDataset": LedgerNotFoundError,
    "RewardDistributorUnknownEpoch": LedgerNotFoundError,
    "ProviderStakingNothingUnbonding": LedgerNotFoundError,
    "GovernorNonexistentProposal": LedgerNotFoundError,
    "TaskRegistryUnknownTask": LedgerNotFoundError,
    "TaskRegistryUnknownDomain": LedgerNotFoundError,
    "InferenceMarketUnknownModel": LedgerNotFoundError,
    "InferenceMarketUnknownRequest": LedgerNotFoundError,
    "DisclosureRegistryBudgetExceeded": LedgerBudgetExceededError,
    "InferenceMarketRowBudgetExceeded": LedgerBudgetExceededError,
    "RewardDistributorInsufficientPool": LedgerInsufficientFundsError,
    "ProviderStakingInsufficientStake": LedgerInsufficientFundsError,
    "RewardDistributorAlreadyClaimed": LedgerAlreadyClaimedError,
    "TaskRegistryPoolAlreadyReleased": LedgerAlreadyClaimedError,
    "GovernorAlreadyCastVote": LedgerAlreadyVotedError,
    "GovernorUnexpectedProposalState": LedgerUnexpectedStateError,
    "TimelockUnexpectedOperationState": LedgerUnexpectedStateError,
    "TaskRegistryUnexpectedState": LedgerUnexpectedStateError,
    "TaskRegistryProposalNotDefeated": LedgerUnexpectedStateError,
    "RewardDistributorInvalidProof": LedgerInvalidProofError,
    "ProviderStakingStillUnbonding": LedgerTooEarlyError,
    "InferenceMarketRefundTooEarly": LedgerTooEarlyError,
    "InferenceMarketDeadlinePassed": LedgerDeadlinePassedError,
    "InferenceMarketPriceTooHigh": LedgerPriceTooHighError,
}
"""Solidity error name -> the Python class raised; any other error raises :class:`LedgerRevertError`."""


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else repr(value)
