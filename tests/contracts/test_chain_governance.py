"""The DAOs through Governance: a SuperDAO proposal creates a SubDAO, the SubDAO approves a
task and accepts its model through its timelock, the pool pays out once; defeats refund the
modeler; quadratic and reputation weights count what the badge says at the snapshot; the
SuperDAO's timelock, not the deployer, slashes. The chain moves on between the voting delay,
the voting period and the timelock delay as OpenZeppelin's own Governor tests do."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError

from contracts import (
    SUPER,
    ChainContract,
    Governance,
    Ledger,
    LedgerAlreadyClaimedError,
    LedgerAlreadyVotedError,
    LedgerConflictError,
    LedgerNotFoundError,
    LedgerRevertError,
    LedgerUnauthorizedError,
    LedgerUnexpectedStateError,
    ProposalState,
    Role,
    Support,
    TaskState,
    TxResult,
    VotingWeights,
    advance,
    keccak_id,
)
from contracts.compiled import compiled
from contracts.revert import revert_error

FLAI = 10**18
GRANT = 100 * FLAI  # each member's FLAI
POOL = 500 * FLAI  # what the modeler escrows
MIXED = VotingWeights(0, 5_000, 5_000)  # quadratic + reputation
QUADRATIC = VotingWeights(0, 10_000, 0)
REPUTATION = VotingWeights(0, 0, 10_000)


@pytest.fixture
def gov(ledger: Ledger) -> Governance:
    """The DAOs of a fresh deployment: four members (accounts 1-4) with a badge and 100 FLAI
    each, delegated to themselves, a modeler (account 5) with the pool, the deployer (the
    treasury) with 1,000 FLAI delegated to itself to vote in the token-weighted SuperDAO."""
    for member in members(ledger):
        ledger.mint_badge(member)
        ledger.mint_tokens(member, GRANT)
        ledger.as_sender(member).delegate(member)
    ledger.mint_tokens(modeler(ledger), POOL)
    ledger.mint_tokens(ledger.sender, 10 * GRANT)
    ledger.delegate(ledger.sender)
    return Governance(ledger)


def members(ledger: Ledger) -> list[str]:
    return [ledger.chain.unlocked_account(i) for i in range(1, 5)]


def modeler(ledger: Ledger) -> str:
    return ledger.chain.unlocked_account(5)


def vote(gov: Governance, dao: str, proposal_id: int, votes: Mapping[str, Support]) -> None:
    """Opens the vote, casts ``votes`` (account -> support), and closes it."""
    chain = gov.ledger.chain
    proposal = gov.proposal(dao, proposal_id)
    advance(chain, blocks=max(proposal.snapshot + 1 - chain.web3.eth.block_number, 0))
    for account, support in votes.items():
        gov.as_sender(account).cast_vote(dao, proposal_id, support)
    advance(chain, blocks=max(proposal.deadline + 1 - chain.web3.eth.block_number, 0))


def pass_proposal(gov: Governance, dao: str, proposal_id: int, votes: Mapping[str, Support]) -> TxResult:
    """Votes the proposal through, queues it, waits out the timelock and executes it."""
    vote(gov, dao, proposal_id, votes)
    gov.queue(dao, proposal_id)
    advance(gov.ledger.chain, seconds=timelock_delay(gov, dao) + 1)
    return gov.execute(dao, proposal_id)


def timelock_delay(gov: Governance, dao: str) -> int:
    abi = compiled(ChainContract.SUPER_TIMELOCK).abi
    timelock = gov.ledger.chain.web3.eth.contract(address=gov.timelock_address(dao), abi=abi)
    return timelock.functions.getMinDelay().call()


def create_sub_dao(gov: Governance, domain: str, weights: VotingWeights) -> str:
    """``domain``'s SubDAO, created by a SuperDAO proposal the deployer's FLAI carries."""
    pass_proposal(gov, SUPER, gov.propose_sub_dao(domain, weights), {gov.ledger.sender: Support.FOR})
    return gov.dao_address(domain)


def for_all(ledger: Ledger, support: Support = Support.FOR) -> dict[str, Support]:
    return dict.fromkeys(members(ledger), support)


def test_a_task_from_proposal_to_paid_pool(gov: Governance) -> None:
    ledger = gov.ledger
    governor = create_sub_dao(gov, "healthcare", MIXED)
    factory = ledger.contract(ChainContract.DAO_FACTORY)
    (created,) = factory.events.SubDAOCreated().get_logs(from_block=ledger.manifest.deployment_block)
    assert created["args"]["domain"] == "healthcare" and created["args"]["governor"] == governor
    timelock = gov.timelock_address("healthcare")
    assert created["args"]["timelock"] == timelock == factory.functions.timelockOf("healthcare").call()
    abi = compiled(ChainContract.SUPER_TIMELOCK).abi
    sub_timelock = ledger.chain.web3.eth.contract(address=timelock, abi=abi)
    assert sub_timelock.functions.hasRole(Role.PROPOSER.value, governor).call()
    assert not sub_timelock.functions.hasRole(Role.DEFAULT_ADMIN.value, factory.address).call()

    # The modeler proposes; a retry finds the task and its proposal, escrowing nothing twice.
    modeler_gov = gov.as_sender(modeler(ledger))
    task = ("heart-v1", "healthcare", "bafyspec", "heart", POOL)
    task_id, approval = modeler_gov.propose_task(*task)
    assert modeler_gov.propose_task(*task) == (task_id, approval)
    assert task_id == keccak_id("heart-v1") and approval == gov.approval_proposal_id(task_id)
    assert ledger.token_balance(modeler(ledger)) == 0
    assert gov.task(task_id).state is TaskState.PROPOSED and gov.task(task_id).pool == POOL
    with pytest.raises(LedgerUnauthorizedError, match="TaskRegistryUnauthorizedCaller"):
        registry = ledger.contract(ChainContract.TASKS)
        ledger.send(ChainContract.TASKS, registry.functions.approveTask(task_id))

    # Three members for, one against; executing before the timelock's delay is refused.
    vote(gov, "healthcare", approval, for_all(ledger) | {members(ledger)[3]: Support.AGAINST})
    tally = gov.proposal("healthcare", approval)
    assert tally.state is ProposalState.SUCCEEDED and tally.description == "Approve task heart-v1"
    assert tally.for_votes == 3 * tally.against_votes > tally.quorum > 0
    gov.queue("healthcare", approval)
    with pytest.raises(LedgerUnexpectedStateError, match="TimelockUnexpectedOperationState"):
        gov.execute("healthcare", approval)
    advance(ledger.chain, seconds=timelock_delay(gov, "healthcare") + 1)
    executed = gov.execute("healthcare", approval)
    approved = gov.task(task_id)
    assert approved.state is TaskState.APPROVED and approved.approved_block == executed.block_number
    assert gov.tasks() == [approved]  # listed by calls: the registry enumerates its tasks

    # The coordinator records the model; a retry is a no-op, another result a conflict.
    result = ("bafymodel", "bafyreport", 912_000, 950_000, 30_000, 20_000)
    recorded = gov.record_result(task_id, *result)
    assert not recorded.already_recorded and gov.record_result(task_id, *result).already_recorded
    with pytest.raises(LedgerConflictError, match="TaskRegistryResultConflict"):
        gov.record_result(task_id, "bafyother", "bafyreport", 912_000, 950_000, 30_000, 20_000)
    assert gov.task(task_id).state is TaskState.TRAINED

    # The members accept the model through the validation proposal.
    validation = gov.propose_validation(task_id)
    assert gov.propose_validation(task_id) == validation == gov.stage_proposal(task_id).id
    accepted_in = pass_proposal(gov, "healthcare", validation, for_all(ledger)).block_number
    accepted = gov.task(task_id)
    assert accepted.state is TaskState.ACCEPTED and accepted.accepted_block == accepted_in
    assert (accepted.model_cid, accepted.report_cid, accepted.accuracy_ppm, accepted.parity_gap_ppm) == (
        "bafymodel", "bafyreport", 912_000, 30_000,
    )
    registry = ledger.contract(ChainContract.TASKS)
    (verdict,) = registry.events.ModelAccepted().get_logs(from_block=accepted_in, to_block=accepted_in)
    assert verdict["args"]["modelCid"] == "bafymodel"
    assert gov.accepted_between(accepted_in, accepted_in) == [accepted]
    assert gov.accepted_between(ledger.manifest.deployment_block, accepted_in - 1) == []
    assert gov.stage_proposal(task_id) is None

    # The settler releases the pool into the reward distributor, once.
    before = ledger.rewards_available()
    released = gov.release_pool(task_id)
    assert ledger.rewards_available() == before + POOL
    (event,) = registry.events.PoolReleased().get_logs(from_block=released.block_number)
    assert event["args"]["pool"] == POOL
    with pytest.raises(LedgerAlreadyClaimedError, match="TaskRegistryPoolAlreadyReleased"):
        gov.release_pool(task_id)
    assert gov.task(task_id).state is TaskState.SETTLED and ledger.rewards_available() == before + POOL
    assert [p.state for p in gov.proposals("healthcare")] == [ProposalState.EXECUTED] * 2


@pytest.mark.parametrize(
    "votes",
    [{0: Support.FOR, 1: Support.AGAINST, 2: Support.AGAINST}, {0: Support.FOR}],
    ids=["loses", "misses quorum"],
)
def test_a_defeated_approval_refunds_the_modeler(gov: Governance, votes: Mapping[int, Support]) -> None:
    ledger = gov.ledger
    create_sub_dao(gov, "healthcare", QUADRATIC)
    tiny = ledger.chain.unlocked_account(6)  # a member with 1 FLAI: 1 quadratic vote of a quorum above 2
    ledger.mint_badge(tiny)
    ledger.mint_tokens(tiny, FLAI)
    ledger.as_sender(tiny).delegate(tiny)
    modeler_gov = gov.as_sender(modeler(ledger))
    task_id, approval = modeler_gov.propose_task("census-v1", "healthcare", "bafyspec", "census", POOL)
    voters = [tiny, *members(ledger)]
    chosen = {voters[index]: support for index, support in votes.items()}

    with pytest.raises(LedgerUnexpectedStateError, match="TaskRegistryProposalNotDefeated"):
        gov.close_defeated(task_id)  # still pending
    vote(gov, "healthcare", approval, chosen)
    proposal = gov.stage_proposal(task_id)
    assert proposal.state is ProposalState.DEFEATED
    with pytest.raises(LedgerUnexpectedStateError, match="GovernorUnexpectedProposalState"):
        gov.queue("healthcare", approval)
    gov.close_defeated(task_id)
    assert gov.task(task_id).state is TaskState.REJECTED
    assert ledger.token_balance(modeler(ledger)) == POOL
    with pytest.raises(LedgerUnexpectedStateError, match="TaskRegistryUnexpectedState"):
        gov.close_defeated(task_id)
    assert [t.state for t in gov.tasks()] == [TaskState.REJECTED]


def test_a_rejected_model_pays_nothing(gov: Governance) -> None:
    ledger = gov.ledger
    create_sub_dao(gov, "healthcare", MIXED)
    modeler_gov = gov.as_sender(modeler(ledger))
    task_id, approval = modeler_gov.propose_task("heart-v2", "healthcare", "bafy", "heart", POOL)
    pass_proposal(gov, "healthcare", approval, for_all(ledger))
    gov.record_result(task_id, "bafyunfair", "bafyreport", 700_000, 710_000, 250_000, 300_000)
    validation = gov.propose_validation(task_id)
    vote(gov, "healthcare", validation, for_all(ledger, Support.AGAINST))
    assert gov.stage_proposal(task_id).state is ProposalState.DEFEATED
    with pytest.raises(LedgerUnexpectedStateError, match="TaskRegistryUnexpectedState"):
        gov.release_pool(task_id)  # trained, not accepted
    closed = gov.close_defeated(task_id)
    (rejected,) = ledger.contract(ChainContract.TASKS).events.ModelRejected().get_logs(
        from_block=closed.block_number, to_block=closed.block_number
    )
    assert rejected["args"]["modelCid"] == "bafyunfair"
    assert gov.task(task_id).state is TaskState.MODEL_REJECTED
    assert ledger.token_balance(modeler(ledger)) == POOL and ledger.rewards_available() == 0
    with pytest.raises(LedgerUnexpectedStateError):
        gov.release_pool(task_id)


def test_quadratic_votes_count_badge_holders_by_the_square_root(gov: Governance) -> None:
    ledger = gov.ledger
    create_sub_dao(gov, "quadratic", QUADRATIC)
    small, large, outsider = (ledger.chain.unlocked_account(i) for i in (6, 7, 8))
    ledger.mint_badge(small)
    ledger.mint_badge(large)
    ledger.mint_tokens(small, FLAI)
    ledger.mint_tokens(large, 100 * FLAI)  # 100x the tokens
    ledger.mint_tokens(outsider, 100 * FLAI)  # as many, without a badge
    for account in (small, large, outsider):  # ERC20Votes counts delegated balances only
        ledger.as_sender(account).delegate(account)
    block = ledger.chain.web3.eth.block_number
    advance(ledger.chain, blocks=1)
    assert gov.votes("quadratic", small, block) == FLAI
    assert gov.votes("quadratic", large, block) == 10 * gov.votes("quadratic", small, block)
    assert gov.votes("quadratic", outsider, block) == 0
    assert gov.votes(SUPER, outsider, block) == 100 * FLAI  # token-weighted: no badge needed

    task_id, approval = gov.as_sender(modeler(ledger)).propose_task("q", "quadratic", "bafy", "heart", POOL)
    vote(gov, "quadratic", approval, {small: Support.FOR, large: Support.AGAINST, outsider: Support.FOR})
    tally = gov.proposal("quadratic", approval)
    assert (tally.for_votes, tally.against_votes) == (FLAI, 10 * FLAI)
    assert tally.state is ProposalState.DEFEATED


def test_reputation_counts_at_the_snapshot(gov: Governance) -> None:
    ledger = gov.ledger
    create_sub_dao(gov, "reputation", REPUTATION)
    first, second = members(ledger)[:2]
    ledger.set_reputation(first, 7)
    ledger.set_reputation(second, 2)
    _, approval = gov.as_sender(modeler(ledger)).propose_task("r", "reputation", "bafy", "heart", POOL)
    proposal = gov.proposal("reputation", approval)
    advance(ledger.chain, blocks=max(proposal.snapshot + 1 - ledger.chain.web3.eth.block_number, 0))
    ledger.set_reputation(first, 50)  # after the snapshot: no effect on this vote
    assert gov.as_sender(first).cast_vote("reputation", approval, Support.FOR) == 7 * FLAI
    against = gov.as_sender(second).cast_vote("reputation", approval, Support.AGAINST, "too costly")
    assert against == 2 * FLAI
    with pytest.raises(LedgerAlreadyVotedError) as caught:
        gov.as_sender(first).cast_vote("reputation", approval, Support.AGAINST)
    assert caught.value.arguments == {"voter": first}
    assert gov.proposal("reputation", approval).quorum == 9 * FLAI * 4 // 100  # 4% of all reputation


def test_badges_are_one_per_identity_and_stay_put(gov: Governance) -> None:
    ledger = gov.ledger
    holder, other = members(ledger)[:2]
    badge = ledger.contract(ChainContract.BADGE)
    with pytest.raises(LedgerConflictError, match="ContributionBadgeAlreadyHeld"):
        ledger.mint_badge(holder)
    moving = badge.functions.transferFrom(holder, other, ledger.badge_of(holder))
    with pytest.raises((ContractLogicError, TransactionFailed)) as caught:
        moving.transact({"from": holder})
    error = revert_error(ChainContract.BADGE, "transferFrom", caught.value)
    assert error.error == "ContributionBadgeSoulbound"
    burned = ledger.burn_badge(ledger.badge_of(holder)).block_number
    advance(ledger.chain, blocks=1)
    assert badge.functions.isPastHolder(holder, burned - 1).call()
    assert not badge.functions.isPastHolder(holder, burned).call()
    assert badge.functions.getPastHolderCount(burned - 1).call() == 4
    assert badge.functions.getPastHolderCount(burned).call() == 3


def test_the_super_dao_timelock_slashes_not_the_deployer(gov: Governance) -> None:
    ledger = gov.ledger
    timelock = gov.timelock_address(SUPER)
    assert ledger.has_role(ChainContract.STAKING, Role.SLASHER, timelock)
    assert not ledger.has_role(ChainContract.STAKING, Role.SLASHER, ledger.sender)
    assert not ledger.has_role(ChainContract.SUPER_TIMELOCK, Role.DEFAULT_ADMIN, ledger.sender)
    assert ledger.contract(ChainContract.DAO_FACTORY).functions.owner().call() == timelock
    provider = ledger.as_sender(members(ledger)[0])
    provider.stake(60 * FLAI)
    with pytest.raises(LedgerUnauthorizedError):
        ledger.slash(provider.sender, FLAI, "the deployer no longer slashes")

    staking = ledger.contract(ChainContract.STAKING)
    slash = staking.encode_abi("slash", args=[provider.sender, 25 * FLAI, "failed the quality gate"])
    proposal = gov.propose(SUPER, [staking.address], [0], [slash], "Slash a provider that failed the gate")
    treasury = ledger.token_balance(ledger.sender)
    pass_proposal(gov, SUPER, proposal, {ledger.sender: Support.FOR})
    assert ledger.stake_of(provider.sender) == 35 * FLAI
    assert ledger.token_balance(ledger.sender) == treasury + 25 * FLAI  # the staking treasury


def test_a_domain_has_one_sub_dao(gov: Governance) -> None:
    create_sub_dao(gov, "finance", MIXED)
    again = gov.propose_sub_dao("finance", QUADRATIC)
    with pytest.raises(LedgerConflictError, match="SubDAOFactoryDomainExists"):
        pass_proposal(gov, SUPER, again, {gov.ledger.sender: Support.FOR})
    with pytest.raises(LedgerUnauthorizedError, match="OwnableUnauthorizedAccount"):
        gov.ledger.send(
            ChainContract.DAO_FACTORY,
            gov.ledger.contract(ChainContract.DAO_FACTORY).functions.createSubDAO(
                "direct", MIXED.as_tuple(), (1, 20, 0, 4, 60), compiled(ChainContract.SUPER_DAO).bytecode
            ),
        )
    with pytest.raises(LedgerNotFoundError, match="TaskRegistryUnknownDomain"):
        gov.as_sender(modeler(gov.ledger)).propose_task("orphan", "no-such-domain", "bafy", "heart", POOL)


def test_voting_weights_are_checked_at_deployment(ledger: Ledger) -> None:
    artifact = compiled(ChainContract.SUPER_DAO)
    factory = ledger.chain.web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    addresses = ledger.manifest.addresses
    deploy = factory.constructor(
        "bad", addresses[ChainContract.TOKEN], addresses[ChainContract.BADGE],
        addresses[ChainContract.SUPER_TIMELOCK], 1, 20, 0, 4, (10_001, 0, 0),
    )
    with pytest.raises((ContractLogicError, TransactionFailed)) as caught:
        deploy.transact({"from": ledger.sender})
    error = revert_error(ChainContract.SUPER_DAO, "constructor", caught.value)
    assert isinstance(error, LedgerRevertError) and error.error == "FLAIGovernorInvalidWeights"
    assert error.arguments == {"tokenBps": 10_001, "quadraticBps": 0, "reputationBps": 0}
