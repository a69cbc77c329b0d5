"""RewardDistributor through the Ledger: an epoch is posted once, reserves its total, and each
leaf pays once, to its own account, with its own epoch's proof."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import (
    ChainContract,
    Ledger,
    LedgerAlreadyClaimedError,
    LedgerConflictError,
    LedgerInsufficientFundsError,
    LedgerInvalidProofError,
    LedgerNotFoundError,
    LedgerRevertError,
    LedgerUnauthorizedError,
    Role,
)
from contracts.manifest import manifest_path
from flai.rewards import EpochTree, epoch_tree

POOL = 10**21


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A fresh deployment on the embedded chain, its pool funded (the anvil case is below)."""
    return funded(Ledger.open(tmp_path / "chain"))


def funded(ledger: Ledger) -> Ledger:
    ledger.mint_tokens(ledger.sender, POOL)
    ledger.fund_rewards(POOL)
    return ledger


def providers(ledger: Ledger) -> list[str]:
    return ledger.chain.web3.eth.accounts[2:6]


def tree(ledger: Ledger, epoch: int) -> EpochTree:
    return epoch_tree(epoch, [(account, (i + 1) * 10**18) for i, account in enumerate(providers(ledger))])


def claim(ledger: Ledger, tree: EpochTree, index: int, **changed: object) -> None:
    payout = tree.payouts[index]
    leaf = {"epoch": tree.epoch, "index": index, "account": payout.account, "amount": payout.amount}
    ledger.claim(**{**leaf, **changed}, proof=tree.proof(index))


def test_a_valid_proof_pays_once(ledger: Ledger, stranger: Ledger) -> None:
    epoch = tree(ledger, 1)
    posted = ledger.post_epoch_root(1, epoch.root, epoch.total)
    assert not posted.already_recorded and ledger.epoch_root(1) == epoch.root
    payout = epoch.payouts[2]
    assert not ledger.is_claimed(1, 2)

    paid = stranger.claim(1, 2, payout.account, payout.amount, epoch.proof(2))  # anyone may submit it
    assert ledger.token_balance(payout.account) == payout.amount
    assert ledger.token_balance(stranger.sender) == 0
    assert ledger.is_claimed(1, 2) and not ledger.is_claimed(1, 1)
    distributor = ledger.contract(ChainContract.DISTRIBUTOR)
    (event,) = distributor.events.Claimed().get_logs(from_block=paid.block_number, to_block=paid.block_number)
    assert dict(event["args"]) == {"epoch": 1, "index": 2, "account": payout.account, "amount": payout.amount}

    with pytest.raises(LedgerAlreadyClaimedError) as caught:
        claim(ledger, epoch, 2)
    assert caught.value.arguments == {"epoch": 1, "index": 2}
    assert ledger.token_balance(payout.account) == payout.amount


@pytest.mark.parametrize(
    "changed",
    [{"amount": 3 * 10**18 + 1}, {"account": "0x" + "ab" * 20}, {"epoch": 2}],
    ids=["wrong amount", "wrong account", "proof of another epoch"],
)
def test_a_leaf_that_is_not_in_the_tree_is_refused(ledger: Ledger, changed: dict[str, object]) -> None:
    for epoch in (tree(ledger, 1), tree(ledger, 2)):  # the same payouts in both epochs
        ledger.post_epoch_root(epoch.epoch, epoch.root, epoch.total)
    with pytest.raises(LedgerInvalidProofError) as caught:
        claim(ledger, tree(ledger, 1), 2, **changed)
    assert caught.value.error == "RewardDistributorInvalidProof"
    assert caught.value.arguments["index"] == 2
    assert not ledger.is_claimed(1, 2) and not ledger.is_claimed(2, 2)
    assert ledger.token_balance(providers(ledger)[2]) == 0


def test_an_epoch_has_one_root(ledger: Ledger) -> None:
    """A retried settlement posts nothing new; a re-run that built another tree is refused."""
    epoch = tree(ledger, 1)
    ledger.post_epoch_root(1, epoch.root, epoch.total)
    available = ledger.rewards_available()
    again = ledger.post_epoch_root(1, epoch.root, epoch.total)
    assert again.already_recorded and ledger.rewards_available() == available
    other = epoch_tree(1, [(providers(ledger)[0], 1)])
    for root, total in ((other.root, other.total), (other.root, epoch.total), (epoch.root, epoch.total - 1)):
        with pytest.raises(LedgerConflictError) as caught:
            ledger.post_epoch_root(1, root, total)
        assert caught.value.arguments == {"epoch": 1, "root": epoch.root, "total": epoch.total}
    assert ledger.epoch_root(1) == epoch.root and ledger.rewards_available() == available


def test_posting_reserves_the_epoch_total(ledger: Ledger) -> None:
    first = epoch_tree(1, [(providers(ledger)[0], POOL - 10)])
    ledger.post_epoch_root(1, first.root, first.total)
    assert ledger.rewards_available() == 10
    second = epoch_tree(2, [(providers(ledger)[1], 11)])
    with pytest.raises(LedgerInsufficientFundsError) as caught:
        ledger.post_epoch_root(2, second.root, second.total)
    assert caught.value.arguments == {"epoch": 2, "total": 11, "available": 10}
    assert ledger.epoch_root(2) is None
    ledger.mint_tokens(ledger.sender, 1)
    funded_at = ledger.fund_rewards(1).block_number
    distributor = ledger.contract(ChainContract.DISTRIBUTOR)
    (event,) = distributor.events.PoolFunded().get_logs(from_block=funded_at, to_block=funded_at)
    assert dict(event["args"]) == {"funder": ledger.sender, "amount": 1}
    ledger.post_epoch_root(2, second.root, second.total)
    claim(ledger, first, 0)  # paying a posted epoch leaves the others' reservations alone
    assert ledger.rewards_available() == 0
    claim(ledger, second, 0)
    assert ledger.token_balance(distributor.address) == 0


def test_unknown_epoch_and_zero_root(ledger: Ledger) -> None:
    epoch = tree(ledger, 7)
    assert ledger.epoch_root(7) is None
    with pytest.raises(LedgerNotFoundError, match="RewardDistributorUnknownEpoch"):
        claim(ledger, epoch, 0)
    with pytest.raises(LedgerRevertError, match="RewardDistributorInvalidRoot"):
        ledger.post_epoch_root(7, bytes(32), 0)


def test_only_settlers_post(ledger: Ledger, stranger: Ledger) -> None:
    epoch = tree(ledger, 1)
    with pytest.raises(LedgerUnauthorizedError) as caught:
        stranger.post_epoch_root(1, epoch.root, epoch.total)
    assert caught.value.arguments == {"account": stranger.sender, "neededRole": Role.SETTLER.value}
    assert ledger.has_role(ChainContract.DISTRIBUTOR, Role.SETTLER, ledger.sender)
    ledger.grant_role(ChainContract.DISTRIBUTOR, Role.SETTLER, stranger.sender)  # e.g. the settlement flow
    stranger.post_epoch_root(1, epoch.root, epoch.total)
    assert ledger.epoch_root(1) == epoch.root


def test_claim_on_anvil(anvil_url: str, tmp_path: Path) -> None:
    """The claim path on a real node, where reverts arrive as JSON-RPC error data."""
    ledger = funded(Ledger.open(tmp_path / "chain", anvil_url))
    epoch = tree(ledger, 1)
    ledger.post_epoch_root(1, epoch.root, epoch.total)
    claim(ledger, epoch, 3)
    assert ledger.token_balance(epoch.payouts[3].account) == epoch.payouts[3].amount
    with pytest.raises(LedgerAlreadyClaimedError):
        claim(ledger, epoch, 3)
    with pytest.raises(LedgerInvalidProofError):
        claim(ledger, epoch, 1, amount=1)
    with pytest.raises(LedgerConflictError):
        ledger.post_epoch_root(1, tree(ledger, 2).root, epoch.total)


@pytest.mark.parametrize("epoch_number", [32, 64])
def test_a_revert_whose_arguments_read_like_a_string_is_decoded(ledger: Ledger, epoch_number: int) -> None:
    """Errors of epoch 32 read as the empty string and of epoch 64 as an impossibly long one,
    where web3's embedded provider looks for a revert string (contracts.ledger._tester_provider):
    both must still name their error."""
    epoch = tree(ledger, epoch_number)
    ledger.post_epoch_root(epoch_number, epoch.root, epoch.total)
    with pytest.raises(LedgerInvalidProofError) as caught:
        claim(ledger, epoch, 0, amount=1)
    assert caught.value.arguments["epoch"] == epoch_number
    claim(ledger, epoch, 0)
    with pytest.raises(LedgerAlreadyClaimedError) as caught:
        claim(ledger, epoch, 0)
    assert caught.value.arguments == {"epoch": epoch_number, "index": 0}


def test_a_deployment_from_before_settlement_gets_it_on_its_own_token(tmp_path: Path) -> None:
    """Ledger.open completes an older manifest with the distributor and the staking contract,
    both paying in the deployment's existing token."""
    old = Ledger.open(tmp_path / "chain")
    path = manifest_path(tmp_path / "chain", old.chain.chain_id)
    document = json.loads(path.read_text())
    for contract in (ChainContract.DISTRIBUTOR, ChainContract.STAKING):
        del document["addresses"][contract.value]
    path.write_text(json.dumps(document))
    upgraded = Ledger.open(tmp_path / "chain")
    token = old.manifest.addresses[ChainContract.TOKEN]
    assert upgraded.manifest.addresses[ChainContract.TOKEN] == token
    for contract in (ChainContract.DISTRIBUTOR, ChainContract.STAKING):
        assert upgraded.manifest.addresses[contract] != old.manifest.addresses[contract]
        assert upgraded.contract(contract).functions.token().call() == token
