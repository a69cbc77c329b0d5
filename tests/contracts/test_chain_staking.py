"""ProviderStaking through the Ledger: bonded stake makes a provider eligible, unbonding stake
leaves only after the delay, and only the slasher role slashes, bonded or unbonding stake
alike, to the treasury."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError

from contracts import (
    STAKING_TERMS,
    ChainContract,
    Ledger,
    LedgerInsufficientFundsError,
    LedgerNotFoundError,
    LedgerTooEarlyError,
    LedgerUnauthorizedError,
    Role,
)
from contracts.compiled import compiled
from contracts.revert import revert_error

HELD = 1_000


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A fresh deployment on the embedded chain, whose clock the tests move."""
    return Ledger.open(tmp_path / "chain")


@pytest.fixture
def provider(ledger: Ledger) -> Ledger:
    """A provider account holding FLAI, none of it staked."""
    provider = ledger.as_sender(ledger.chain.unlocked_account(3))
    ledger.mint_tokens(provider.sender, HELD)
    return provider


@pytest.fixture
def slasher(ledger: Ledger) -> Ledger:
    """An account holding ``Role.SLASHER``, granted by the deployer (still staking's admin):
    in a deployment the SuperDAO's timelock holds it (test_chain_governance slashes through a
    proposal), here an account stands in for it."""
    slasher = ledger.as_sender(ledger.chain.unlocked_account(4))
    ledger.grant_role(ChainContract.STAKING, Role.SLASHER, slasher.sender)
    return slasher


def next_block_at(ledger: Ledger, timestamp: int) -> None:
    """The embedded chain's next transaction is mined at ``timestamp``."""
    ledger.chain.web3.provider.ethereum_tester.time_travel(timestamp)


def test_bonded_stake_makes_a_provider_eligible(ledger: Ledger, provider: Ledger) -> None:
    assert ledger.stake_of(provider.sender) == 0
    assert not ledger.eligible(provider.sender, 1) and ledger.eligible(provider.sender, 0)
    staked = provider.stake(300)
    provider.stake(100)
    assert ledger.stake_of(provider.sender) == 400 and ledger.token_balance(provider.sender) == HELD - 400
    assert ledger.eligible(provider.sender, 400) and not ledger.eligible(provider.sender, 401)
    staking = ledger.contract(ChainContract.STAKING)
    (event,) = staking.events.Staked().get_logs(from_block=staked.block_number, to_block=staked.block_number)
    assert dict(event["args"]) == {"provider": provider.sender, "amount": 300, "bonded": 300}
    provider.request_unbond(1)  # unbonding stake no longer counts
    assert not ledger.eligible(provider.sender, 400)


def test_unbonding_waits_out_the_delay(ledger: Ledger, provider: Ledger) -> None:
    provider.stake(500)
    requested = provider.request_unbond(200).block_number
    at = ledger.chain.web3.eth.get_block(requested)["timestamp"]
    withdrawable_at = at + STAKING_TERMS.unbonding_delay_s
    (event,) = ledger.contract(ChainContract.STAKING).events.UnbondRequested().get_logs(
        from_block=requested, to_block=requested
    )
    assert dict(event["args"]) == {
        "provider": provider.sender, "amount": 200, "unbonding": 200, "withdrawableAt": withdrawable_at,
    }
    assert ledger.unbonding_of(provider.sender) == (200, withdrawable_at)
    assert ledger.stake_of(provider.sender) == 300
    with pytest.raises(LedgerTooEarlyError) as caught:
        provider.withdraw_stake()
    assert caught.value.arguments == {"provider": provider.sender, "withdrawableAt": withdrawable_at}

    next_block_at(ledger, withdrawable_at - 1)  # checked on a mined transaction, not an estimate
    with pytest.raises(LedgerTooEarlyError):
        provider.withdraw_stake()
    next_block_at(ledger, withdrawable_at)
    withdrawn = provider.withdraw_stake().block_number
    assert ledger.token_balance(provider.sender) == HELD - 300
    staking = ledger.contract(ChainContract.STAKING)
    (event,) = staking.events.Withdrawn().get_logs(from_block=withdrawn, to_block=withdrawn)
    assert dict(event["args"]) == {"provider": provider.sender, "amount": 200}
    assert ledger.unbonding_of(provider.sender) == (0, 0) and ledger.stake_of(provider.sender) == 300
    with pytest.raises(LedgerNotFoundError, match="ProviderStakingNothingUnbonding"):
        provider.withdraw_stake()
    with pytest.raises(LedgerInsufficientFundsError) as caught:
        provider.request_unbond(301)
    assert caught.value.arguments == {"provider": provider.sender, "requested": 301, "available": 300}


def test_a_new_request_restarts_the_delay(ledger: Ledger, provider: Ledger) -> None:
    """Splitting an unbonding into late small requests cannot shorten the wait."""
    provider.stake(500)
    provider.request_unbond(100)
    _, first = ledger.unbonding_of(provider.sender)
    next_block_at(ledger, first - 1)
    provider.request_unbond(100)
    assert ledger.unbonding_of(provider.sender) == (200, first - 1 + STAKING_TERMS.unbonding_delay_s)
    next_block_at(ledger, first)
    with pytest.raises(LedgerTooEarlyError):
        provider.withdraw_stake()


def test_only_the_slasher_role_slashes(
    ledger: Ledger, provider: Ledger, stranger: Ledger, slasher: Ledger
) -> None:
    provider.stake(400)
    with pytest.raises(LedgerUnauthorizedError) as caught:
        stranger.slash(provider.sender, 50, "not its role")
    assert caught.value.arguments == {"account": stranger.sender, "neededRole": Role.SLASHER.value}
    with pytest.raises(LedgerUnauthorizedError):
        provider.slash(provider.sender, 50, "nor its own")
    assert ledger.stake_of(provider.sender) == 400

    treasury = ledger.sender  # the deployer, as Ledger deploys it
    before = ledger.token_balance(treasury)
    slashed = slasher.slash(provider.sender, 150, "failed the quality gate: task 7, round 3")
    assert ledger.stake_of(provider.sender) == 250
    assert ledger.token_balance(treasury) == before + 150
    staking = ledger.contract(ChainContract.STAKING)
    block = slashed.block_number
    (event,) = staking.events.Slashed().get_logs(from_block=block, to_block=block)
    assert dict(event["args"]) == {
        "provider": provider.sender, "amount": 150, "reason": "failed the quality gate: task 7, round 3",
    }

    ledger.grant_role(ChainContract.STAKING, Role.SLASHER, stranger.sender)  # e.g. a DAO timelock
    stranger.slash(provider.sender, 50, "handed over")
    assert ledger.stake_of(provider.sender) == 200


def test_slashing_reaches_unbonding_stake(ledger: Ledger, provider: Ledger, slasher: Ledger) -> None:
    provider.stake(400)
    provider.request_unbond(300)
    _, withdrawable_at = ledger.unbonding_of(provider.sender)
    treasury = ledger.token_balance(ledger.sender)
    slasher.slash(provider.sender, 250, "misbehaved, then tried to leave")  # 100 bonded, 150 unbonding
    assert ledger.stake_of(provider.sender) == 0
    assert ledger.unbonding_of(provider.sender) == (150, withdrawable_at)
    with pytest.raises(LedgerInsufficientFundsError) as caught:
        slasher.slash(provider.sender, 151, "more than it has")
    assert caught.value.arguments == {"provider": provider.sender, "requested": 151, "available": 150}
    next_block_at(ledger, withdrawable_at)
    provider.withdraw_stake()
    assert ledger.token_balance(provider.sender) == HELD - 250
    assert ledger.token_balance(ledger.sender) == treasury + 250


@pytest.mark.parametrize(
    ("epoch", "dispute", "unbonding"),
    [(100, 20, 120), (100, 20, 60), (0, 20, 60)],
    ids=["delay equals epoch plus dispute window", "delay shorter than an epoch", "no epoch"],
)
def test_the_delay_must_outlast_an_epoch_and_its_dispute_window(
    ledger: Ledger, epoch: int, dispute: int, unbonding: int
) -> None:
    artifact = compiled(ChainContract.STAKING)
    factory = ledger.chain.web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    token = ledger.contract(ChainContract.TOKEN).address
    deploy = factory.constructor(ledger.sender, token, ledger.sender, epoch, dispute, unbonding)
    with pytest.raises((ContractLogicError, TransactionFailed)) as caught:
        deploy.transact({"from": ledger.sender})
    error = revert_error(ChainContract.STAKING, "constructor", caught.value)
    assert error.error == "ProviderStakingInvalidDelay"
    assert error.arguments == {"unbondingDelay": unbonding, "epochLength": epoch, "disputeWindow": dispute}
    epoch = epoch or 1
    valid = factory.constructor(ledger.sender, token, ledger.sender, epoch, dispute, epoch + dispute + 1)
    accepted = valid.transact({"from": ledger.sender})  # one second longer is enough
    assert ledger.chain.web3.eth.wait_for_transaction_receipt(accepted)["status"] == 1
