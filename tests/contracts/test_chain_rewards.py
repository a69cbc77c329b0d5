"""FLAIToken and ContributionBadge through the Ledger: minting, roles, soul-binding, reputation."""

from __future__ import annotations

import pytest
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError

from contracts import (
    ChainContract,
    Ledger,
    LedgerConflictError,
    LedgerNotFoundError,
    LedgerRevertError,
    LedgerUnauthorizedError,
    LedgerValueError,
    Role,
)
from contracts.revert import revert_error

ERC5192 = bytes.fromhex("b45a3c0e")
ERC721 = bytes.fromhex("80ac58cd")


def test_token_mint_balance_and_votes(ledger: Ledger, stranger: Ledger) -> None:
    token = ledger.contract(ChainContract.TOKEN)
    result = ledger.mint_tokens(stranger.sender, 5 * 10**18)
    assert ledger.token_balance(stranger.sender) == 5 * 10**18
    (event,) = token.events.Transfer().get_logs(from_block=result.block_number, to_block=result.block_number)
    assert event["args"]["to"] == stranger.sender and event["args"]["value"] == 5 * 10**18
    # Votes are checkpointed for a future Governor: they count once delegated.
    assert token.functions.getVotes(stranger.sender).call() == 0
    tx = token.functions.delegate(stranger.sender).transact({"from": stranger.sender})
    ledger.chain.web3.eth.wait_for_transaction_receipt(tx)
    assert token.functions.getVotes(stranger.sender).call() == 5 * 10**18
    assert token.functions.CLOCK_MODE().call() == "mode=blocknumber&from=default"


def test_only_minters_mint_tokens(ledger: Ledger, stranger: Ledger) -> None:
    with pytest.raises(LedgerUnauthorizedError) as caught:
        stranger.mint_tokens(stranger.sender, 1)
    assert caught.value.contract == "FLAIToken" and caught.value.function == "mint"
    assert caught.value.arguments == {"account": stranger.sender, "neededRole": Role.MINTER.value}
    assert ledger.token_balance(stranger.sender) == 0
    ledger.grant_role(ChainContract.TOKEN, Role.MINTER, stranger.sender)  # e.g. a reward distributor
    stranger.mint_tokens(stranger.sender, 7)
    assert ledger.token_balance(stranger.sender) == 7


def test_badge_is_locked_and_announced(ledger: Ledger, stranger: Ledger) -> None:
    badge = ledger.contract(ChainContract.BADGE)
    minted = ledger.mint_badge(stranger.sender)
    assert minted.token_id == 1 and ledger.badge_of(stranger.sender) == 1
    assert ledger.badge_of(ledger.sender) is None
    assert ledger.badge_locked(minted.token_id) is True
    (locked,) = badge.events.Locked().get_logs(from_block=minted.block_number, to_block=minted.block_number)
    assert locked["args"]["tokenId"] == 1
    assert badge.functions.supportsInterface(ERC5192).call()
    assert badge.functions.supportsInterface(ERC721).call()
    assert not badge.functions.supportsInterface(bytes.fromhex("ffffffff")).call()
    with pytest.raises(LedgerNotFoundError, match="ERC721NonexistentToken"):
        ledger.badge_locked(2)


@pytest.mark.parametrize("method", ["transferFrom", "safeTransferFrom"])
def test_badge_transfer_reverts(ledger: Ledger, stranger: Ledger, method: str) -> None:
    token_id = ledger.mint_badge(stranger.sender).token_id
    badge = ledger.contract(ChainContract.BADGE)
    transfer = badge.get_function_by_signature(f"{method}(address,address,uint256)")
    with pytest.raises((ContractLogicError, TransactionFailed)) as caught:
        transfer(stranger.sender, ledger.sender, token_id).transact({"from": stranger.sender})
    error = revert_error(ChainContract.BADGE, method, caught.value)
    assert isinstance(error, LedgerRevertError)
    assert error.error == "ContributionBadgeSoulbound"
    assert error.arguments == {"tokenId": token_id, "from": stranger.sender, "to": ledger.sender}
    assert ledger.badge_of(stranger.sender) == token_id and ledger.badge_of(ledger.sender) is None


def test_one_badge_per_holder_and_minter_role(ledger: Ledger, stranger: Ledger) -> None:
    ledger.mint_badge(stranger.sender)
    with pytest.raises(LedgerConflictError) as caught:
        ledger.mint_badge(stranger.sender)
    assert caught.value.arguments == {"holder": stranger.sender, "tokenId": 1}
    with pytest.raises(LedgerUnauthorizedError):
        stranger.mint_badge(ledger.sender)


def test_reputation_history_and_burn(ledger: Ledger, stranger: Ledger) -> None:
    badge = ledger.contract(ChainContract.BADGE)
    with pytest.raises(LedgerNotFoundError, match="ContributionBadgeNotHeld"):
        ledger.set_reputation(stranger.sender, 10)
    token_id = ledger.mint_badge(stranger.sender).token_id
    set_at = ledger.set_reputation(stranger.sender, 40).block_number
    ledger.set_reputation(stranger.sender, 70)
    assert ledger.reputation_of(stranger.sender) == 70
    changes = badge.events.ReputationChanged().get_logs(from_block=set_at)
    assert [(c["args"]["previous"], c["args"]["current"]) for c in changes] == [(0, 40), (40, 70)]
    # A Governor reads the reputation as it was when a vote opened.
    assert badge.functions.getPastReputation(stranger.sender, set_at).call() == 40
    assert badge.functions.getPastTotalReputation(set_at).call() == 40
    with pytest.raises(LedgerUnauthorizedError):
        stranger.set_reputation(stranger.sender, 1_000)

    with pytest.raises(LedgerUnauthorizedError, match="ContributionBadgeUnauthorizedBurn"):
        ledger.as_sender(ledger.chain.unlocked_account(2)).burn_badge(token_id)
    stranger.burn_badge(token_id)  # a holder may give its badge up
    assert ledger.badge_of(stranger.sender) is None and ledger.reputation_of(stranger.sender) == 0
    assert badge.functions.totalReputation().call() == 0
    assert ledger.mint_badge(stranger.sender).token_id == token_id + 1  # ids are never reused


def test_values_are_checked_before_sending(ledger: Ledger) -> None:
    with pytest.raises(LedgerValueError, match="to="):
        ledger.mint_tokens("0x1234", 1)
    with pytest.raises(LedgerValueError, match="amount"):
        ledger.mint_tokens(ledger.sender, -1)
    with pytest.raises(LedgerValueError, match="task_id"):
        ledger.get_task("ab" * 31)
    with pytest.raises(LedgerValueError, match="round"):
        ledger.get_round("ab" * 32, 2**32)
