"""FLAI's DAOs from Python: the SuperDAO, a SubDAO per domain, and the tasks they govern.

A :class:`Governance` is a :class:`~contracts.ledger.Ledger` (same chain, deployment and
sending account) seen through OpenZeppelin's Governor: propose, vote, queue in the timelock,
execute. A DAO is named ``"super"`` (the SuperDAO: token-weighted, it creates SubDAOs and
slashes) or by its domain (``"healthcare"``: the SubDAO that approves that domain's tasks
and accepts their models, with its own voting weights).

A governed task's life (``TaskRegistry``)::

    task_id, approval = gov.propose_task("heart-v1", "healthcare", spec_cid, "heart", pool)
    # members vote; after the voting period: gov.queue(...), after the delay: gov.execute(...)
    gov.record_result(task_id, model_cid, report_cid, 912_000, 950_000, 30_000, 20_000)
    validation = gov.propose_validation(task_id)   # voted, queued, executed the same way
    gov.release_pool(task_id)                       # the pool funds the reward distributor

A proposal's id is a hash of its content, so proposing the same thing again finds the
proposal that exists instead of sending (a retried step is safe). Every decision on a task has
one canonical proposal that anyone can compute (``TaskRegistry.approvalProposal``); a
defeated one is closed with :meth:`Governance.close_defeated`, which refunds the modeler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_utils import keccak
from web3.contract import Contract
from web3.contract.contract import ContractEvent, ContractFunction
from web3.logs import DISCARD

from contracts.compiled import ChainContract, compiled
from contracts.errors import LedgerNotFoundError, LedgerValueError
from contracts.ledger import ZERO_ADDRESS, Chain, Ledger, tx_result
from contracts.records import (
    Bytes32,
    GovernanceParams,
    GovernedTask,
    Proposal,
    ProposalState,
    RecordResult,
    Support,
    TaskState,
    TxResult,
    VotingWeights,
    check_address,
    check_uint,
    keccak_id,
    to_bytes32,
)
from flai.settings import get_settings

SUPER = "super"
"""The SuperDAO's name where a DAO is asked for."""

GOVERNOR = ChainContract.SUPER_DAO  # the kind of every Governor, for typed errors
TASKS = ChainContract.TASKS


class Governance:
    """The DAOs and governed tasks of one deployment, used from the Ledger's sender."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._registry = ledger.contract(TASKS)
        self._factory = ledger.contract(ChainContract.DAO_FACTORY)

    def as_sender(self, sender: str) -> Governance:
        """The same DAOs, acting from another account (unlocked, or added with a signer)."""
        return Governance(self.ledger.as_sender(sender))

    # -- DAOs --------------------------------------------------------------------------------

    def sub_dao(self, domain: str) -> str | None:
        """The Governor address of ``domain``'s SubDAO, or None if it has none yet."""
        governor, _ = self.ledger.read(ChainContract.DAO_FACTORY, self._factory.functions.subDAO(domain))
        return None if governor == ZERO_ADDRESS else governor

    def dao_address(self, dao: str) -> str:
        """The Governor of ``dao`` (``"super"`` or a domain with a SubDAO)."""
        if dao == SUPER:
            return self.ledger.contract(GOVERNOR).address
        governor = self.sub_dao(dao)
        if governor is None:
            raise LedgerValueError("dao", dao, "'super' or a domain that has a SubDAO")
        return governor

    def timelock_address(self, dao: str) -> str:
        """The timelock that executes ``dao``'s proposals (and holds what it governs)."""
        return self.ledger.read(GOVERNOR, self._governor(dao).functions.timelock())

    def timelock_delay(self, dao: str) -> int:
        """Seconds a queued proposal of ``dao`` waits in its timelock before it may execute."""
        timelock = self.ledger.chain.web3.eth.contract(
            address=self.timelock_address(dao), abi=compiled(ChainContract.SUPER_TIMELOCK).abi)
        return self.ledger.read(ChainContract.SUPER_TIMELOCK, timelock.functions.getMinDelay())

    def propose(
        self,
        dao: str,
        targets: Sequence[str],
        values: Sequence[int],
        calldatas: Sequence[bytes],
        description: str,
    ) -> int:
        """Opens a proposal at ``dao`` and returns its id; an identical proposal that exists
        already is returned without sending anything."""
        governor = self._governor(dao)
        content = (
            [check_address(target, "target") for target in targets],
            [check_uint(value, 256, "value") for value in values],
            list(calldatas),
        )
        proposal_id = self.ledger.read(
            GOVERNOR, governor.functions.hashProposal(*content, keccak(text=description))
        )
        if not self._exists(governor, proposal_id):
            self.ledger.send(GOVERNOR, governor.functions.propose(*content, description))
        return proposal_id

    def cast_vote(self, dao: str, proposal_id: int, support: Support, reason: str = "") -> int:
        """Votes on an active proposal with the sender's weight at its snapshot, and returns
        that weight. A second vote raises :class:`~contracts.errors.LedgerAlreadyVotedError`;
        a proposal not active :class:`~contracts.errors.LedgerUnexpectedStateError`."""
        governor = self._governor(dao)
        call = governor.functions.castVoteWithReason(proposal_id, Support(support).value, reason)
        receipt = self.ledger.send(GOVERNOR, call)
        (cast,) = governor.events.VoteCast().process_receipt(receipt, errors=DISCARD)
        return cast["args"]["weight"]

    def queue(self, dao: str, proposal_id: int) -> TxResult:
        """Schedules a succeeded proposal in ``dao``'s timelock (anyone may)."""
        governor = self._governor(dao)
        call = governor.functions.queue(*self._content(governor, proposal_id))
        return tx_result(self.ledger.send(GOVERNOR, call))

    def execute(self, dao: str, proposal_id: int) -> TxResult:
        """Executes a queued proposal once the timelock's delay has passed (anyone may); a
        revert of the proposal's call raises that call's typed error."""
        governor = self._governor(dao)
        call = governor.functions.execute(*self._content(governor, proposal_id))
        return tx_result(self.ledger.send(GOVERNOR, call))

    def proposal(self, dao: str, proposal_id: int) -> Proposal:
        """Where proposal ``proposal_id`` of ``dao`` stands, with its tally; an unknown id
        raises :class:`~contracts.errors.LedgerNotFoundError`."""
        governor = self._governor(dao)
        description = self._created(governor, proposal_id)["description"]
        return self._proposal(dao, governor, proposal_id, description)

    def proposals(self, dao: str) -> list[Proposal]:
        """Every proposal of ``dao``, oldest first (read from its ``ProposalCreated`` events)."""
        governor = self._governor(dao)
        return [
            self._proposal(dao, governor, event["args"]["proposalId"], event["args"]["description"])
            for event in self._events(governor.events.ProposalCreated())
        ]

    def votes(self, dao: str, account: str, block: int) -> int:
        """``account``'s voting weight in ``dao`` at ``block`` (a past block)."""
        call = self._governor(dao).functions.getVotes(check_address(account, "account"), block)
        return self.ledger.read(GOVERNOR, call)

    def propose_sub_dao(
        self, domain: str, weights: VotingWeights, params: GovernanceParams | None = None
    ) -> int:
        """Opens the SuperDAO proposal that creates ``domain``'s SubDAO with ``weights`` and
        ``params`` (default: the settings' ``governance_*``); returns its id.

        The proposal carries FLAIGovernor's creation code: the factory would exceed EIP-170
        with it built in (see ``SubDAOFactory``).
        """
        params = params or GovernanceParams.from_settings(get_settings())
        code = compiled(GOVERNOR).bytecode
        calldata = self._factory.encode_abi(
            "createSubDAO", args=[domain, weights.as_tuple(), params.as_tuple(), code]
        )
        return self.propose(SUPER, [self._factory.address], [0], [calldata], f"Create SubDAO {domain}")

    # -- governed tasks ----------------------------------------------------------------------

    @staticmethod
    def task_id(name: str) -> bytes:
        """The registry's id of the task called ``name``."""
        return keccak_id(name)

    def propose_task(
        self, name: str, domain: str, spec_cid: str, dataset: str, pool: int
    ) -> tuple[bytes, int]:
        """Proposes task ``name`` to ``domain``'s SubDAO, escrowing ``pool`` of the sender's
        FLAI, and opens its canonical approval proposal; returns the task id and the
        proposal id. Retrying finds the task and the proposal instead of sending them again;
        another task under the name raises :class:`~contracts.errors.LedgerConflictError`."""
        task_id = keccak_id(name)
        content = (name, domain, spec_cid, dataset, check_uint(pool, 256, "pool"))
        existing = self._find_task(task_id)
        if existing is None or existing.modeler != self.ledger.sender or content != (
            existing.name, existing.domain, existing.spec_cid, existing.dataset, existing.pool
        ):
            self.ledger.approve(self._registry.address, pool)
            self.ledger.send(TASKS, self._registry.functions.proposeTask(task_id, *content))
        approval = self._registry.functions.approvalProposal
        if self.task(task_id).state is TaskState.PROPOSED:
            return task_id, self._open(task_id, approval)
        return task_id, self._canonical_id(task_id, approval)

    def approval_proposal_id(self, task: Bytes32) -> int:
        """The id of the task's canonical approval proposal (whether opened or not)."""
        return self._canonical_id(to_bytes32(task, "task"), self._registry.functions.approvalProposal)

    def validation_proposal_id(self, task: Bytes32) -> int:
        """The id of the canonical proposal that accepts the task's model (opened or not)."""
        return self._canonical_id(to_bytes32(task, "task"), self._registry.functions.validationProposal)

    def propose_validation(self, task: Bytes32) -> int:
        """Opens the canonical proposal that accepts the trained model (once: found after)."""
        return self._open(to_bytes32(task, "task"), self._registry.functions.validationProposal)

    def stage_proposal(self, task: Bytes32) -> Proposal | None:
        """The canonical proposal the task waits on (approval while proposed, validation while
        trained), or None if it waits on none or it was not opened yet."""
        task_id = to_bytes32(task, "task")
        stages = {
            TaskState.PROPOSED: self._registry.functions.approvalProposal,
            TaskState.TRAINED: self._registry.functions.validationProposal,
        }
        stage = stages.get(self.task(task_id).state)
        if stage is None:
            return None
        domain, content, description = self._canonical(task_id, stage)
        governor = self._governor(domain)
        call = governor.functions.hashProposal(*content, keccak(text=description))
        proposal_id = self.ledger.read(GOVERNOR, call)
        if not self._exists(governor, proposal_id):
            return None
        return self._proposal(domain, governor, proposal_id, description)

    def close_defeated(self, task: Bytes32) -> TxResult:
        """Closes the task's stage whose canonical proposal was defeated, expired or canceled
        (Rejected, or ModelRejected) and refunds the modeler; anyone may."""
        call = self._registry.functions.closeDefeated(to_bytes32(task, "task"))
        return tx_result(self.ledger.send(TASKS, call))

    def cancel_task(self, task: Bytes32) -> TxResult:
        """Withdraws a task not approved yet and refunds its pool (its modeler only)."""
        call = self._registry.functions.cancelTask(to_bytes32(task, "task"))
        return tx_result(self.ledger.send(TASKS, call))

    def record_result(
        self,
        task: Bytes32,
        model_cid: str,
        report_cid: str,
        accuracy_ppm: int,
        auc_ppm: int,
        parity_gap_ppm: int,
        opportunity_gap_ppm: int,
    ) -> RecordResult:
        """Records an approved task's model, its validation report and its metrics (parts per
        million; needs ``Role.RECORDER``). The same result again returns
        ``already_recorded=True``; another raises :class:`~contracts.errors.LedgerConflictError`."""
        call = self._registry.functions.recordResult(
            to_bytes32(task, "task"),
            model_cid,
            report_cid,
            check_uint(accuracy_ppm, 32, "accuracy_ppm"),
            check_uint(auc_ppm, 32, "auc_ppm"),
            check_uint(parity_gap_ppm, 32, "parity_gap_ppm"),
            check_uint(opportunity_gap_ppm, 32, "opportunity_gap_ppm"),
        )
        return self.ledger.record(TASKS, call, self._registry.events.ResultRecorded())

    def release_pool(self, task: Bytes32) -> TxResult:
        """Pays an accepted task's pool into the reward distributor (needs ``Role.SETTLER``);
        a second release raises :class:`~contracts.errors.LedgerAlreadyClaimedError`."""
        call = self._registry.functions.releasePool(to_bytes32(task, "task"))
        return tx_result(self.ledger.send(TASKS, call))

    def task(self, task: Bytes32) -> GovernedTask:
        """The task as the registry holds it; an unknown id raises
        :class:`~contracts.errors.LedgerNotFoundError`."""
        task_id = to_bytes32(task, "task")
        (state, modeler, approved, accepted, metrics, pool, name, domain, spec_cid, dataset,
         model_cid, report_cid) = self.ledger.read(TASKS, self._registry.functions.getTask(task_id))
        return GovernedTask(
            task_id, name, domain, TaskState(state), modeler, spec_cid, dataset, pool, model_cid,
            report_cid, *metrics, approved, accepted,
        )

    def tasks(self) -> list[GovernedTask]:
        """Every task ever proposed, in the order proposed, as it stands now."""
        functions = self._registry.functions
        count = self.ledger.read(TASKS, functions.taskCount())
        return [self.task(self.ledger.read(TASKS, functions.taskIdAt(index))) for index in range(count)]

    def accepted_between(self, from_block: int, to_block: int) -> list[GovernedTask]:
        """The tasks whose model was accepted in blocks ``from_block`` to ``to_block``, in
        that order, as they stand now (settled since, or not)."""
        accepted = [t for t in self.tasks() if from_block <= t.accepted_block <= to_block]
        return sorted(accepted, key=lambda t: t.accepted_block)

    # -- plumbing ----------------------------------------------------------------------------

    def _governor(self, dao: str) -> Contract:
        web3 = self.ledger.chain.web3
        return web3.eth.contract(address=self.dao_address(dao), abi=compiled(GOVERNOR).abi)

    def _exists(self, governor: Contract, proposal_id: int) -> bool:
        return self.ledger.read(GOVERNOR, governor.functions.proposalSnapshot(proposal_id)) != 0

    def _proposal(self, dao: str, governor: Contract, proposal_id: int, description: str) -> Proposal:
        read = self.ledger.read
        functions = governor.functions
        state = ProposalState(read(GOVERNOR, functions.state(proposal_id)))
        against, for_, abstain = read(GOVERNOR, functions.proposalVotes(proposal_id))
        snapshot = read(GOVERNOR, functions.proposalSnapshot(proposal_id))
        opened = snapshot < self.ledger.chain.web3.eth.block_number
        return Proposal(
            id=proposal_id,
            dao=dao,
            description=description,
            state=state,
            for_votes=for_,
            against_votes=against,
            abstain_votes=abstain,
            quorum=read(GOVERNOR, functions.quorum(snapshot)) if opened else None,
            snapshot=snapshot,
            deadline=read(GOVERNOR, functions.proposalDeadline(proposal_id)),
            eta=read(GOVERNOR, functions.proposalEta(proposal_id)),
        )

    def _created(self, governor: Contract, proposal_id: int) -> Mapping[str, Any]:
        """The ``ProposalCreated`` arguments of ``proposal_id``; an unknown id raises
        :class:`~contracts.errors.LedgerNotFoundError` (``GovernorNonexistentProposal``).

        The proposal was made in block snapshot - voting delay: that block is read first, as
        reading the whole history costs a long-lived node (or the embedded chain) seconds; the
        whole history only if the delay changed since."""
        read, functions = self.ledger.read, governor.functions
        read(GOVERNOR, functions.state(proposal_id))
        block = read(GOVERNOR, functions.proposalSnapshot(proposal_id)) - read(GOVERNOR, functions.votingDelay())
        event = governor.events.ProposalCreated()
        for read_events in (lambda: event.get_logs(from_block=block, to_block=block),
                            lambda: self._events(event)):
            for found in read_events():
                if found["args"]["proposalId"] == proposal_id:
                    return found["args"]
        raise LedgerNotFoundError(GOVERNOR.value, "state", "GovernorNonexistentProposal",
                                  {"proposalId": proposal_id})

    def _content(self, governor: Contract, proposal_id: int) -> tuple[Any, ...]:
        """What ``queue`` and ``execute`` take: the proposal's calls and description hash."""
        args = self._created(governor, proposal_id)
        return args["targets"], args["values"], args["calldatas"], keccak(text=args["description"])

    def _canonical(self, task_id: bytes, stage: ContractFunction) -> tuple[str, tuple[Any, ...], str]:
        """The task's domain, and the calls and description of its canonical ``stage`` proposal
        (``stage``: the registry's ``approvalProposal`` or ``validationProposal``)."""
        domain = self.task(task_id).domain
        targets, values, calldatas, description = self.ledger.read(TASKS, stage(task_id))
        return domain, (targets, values, calldatas), description

    def _canonical_id(self, task_id: bytes, stage: ContractFunction) -> int:
        domain, content, description = self._canonical(task_id, stage)
        call = self._governor(domain).functions.hashProposal(*content, keccak(text=description))
        return self.ledger.read(GOVERNOR, call)

    def _open(self, task_id: bytes, stage: ContractFunction) -> int:
        """Opens the task's canonical ``stage`` proposal at its domain's SubDAO (or finds it)."""
        domain, content, description = self._canonical(task_id, stage)
        return self.propose(domain, *content, description)

    def _find_task(self, task_id: bytes) -> GovernedTask | None:
        try:
            return self.task(task_id)
        except LedgerNotFoundError:
            return None

    def _events(self, event: ContractEvent) -> list[Any]:
        return list(event.get_logs(from_block=self.ledger.manifest.deployment_block))


def advance(chain: Chain, blocks: int = 0, seconds: int = 0) -> None:
    """Moves a development chain on: ``seconds`` later and ``blocks`` blocks further, as
    OpenZeppelin's Governor tests do between a proposal's voting delay, its voting period and
    its timelock delay. Moving the clock mines at least one block, stamped that much later.

    Works on the embedded chain (eth-tester) and anvil; any other node raises
    :class:`~contracts.errors.LedgerValueError`: a real chain's time is not ours to move.
    """
    check_uint(blocks, 64, "blocks")
    check_uint(seconds, 64, "seconds")
    blocks = max(blocks, 1) if seconds else blocks
    web3 = chain.web3
    with chain.lock:
        if chain.embedded:
            tester = web3.provider.ethereum_tester
            if seconds:
                pending = tester.get_block_by_number("pending")["timestamp"]
                tester.time_travel(pending + seconds)  # mines a block
                blocks -= 1
            if blocks:
                tester.mine_blocks(blocks)
            return
        if not web3.client_version.lower().startswith("anvil"):
            raise LedgerValueError("chain", chain.url, "the embedded chain or anvil (a development chain)")
        if seconds:
            _dev_rpc(chain, "evm_increaseTime", [seconds])
        if blocks:
            _dev_rpc(chain, "anvil_mine", [hex(blocks)])
        if chain.durability.local_node is not None:
            chain.durability.local_node.persist(web3)


def _dev_rpc(chain: Chain, method: str, params: list[Any]) -> None:
    answer = chain.web3.provider.make_request(method, params)
    if "error" in answer:
        raise LedgerValueError("chain", chain.url, f"a node that accepts {method}: {answer['error']}")
