"""The chain client of FLAI: deploy or attach to the contracts, record lineage, charge privacy
budgets, mint and settle rewards, stake and slash. Governance (the DAOs and their tasks) is
:class:`contracts.governance.Governance` and the inference market
:class:`contracts.market.Market`, each composed over a Ledger.

A :class:`Ledger` is one deployment of FLAI's contracts (:class:`ChainContract`: the token,
the badge, the registries, the reward distributor, staking, the SuperDAO and its timelock, the
SubDAO factory, the task registry, the inference market and the Uniswap V2 contracts of the
FLAI/WETH pool) seen through one sending account. It runs against the
embedded py-evm chain (no URL: the default, in process) or any JSON-RPC node (anvil, a
testnet, an L2), waits for every receipt, and turns reverts into typed errors that name the
Solidity error (:mod:`contracts.errors`).

Every record is idempotent on chain: recording identical content again is a transaction
that changes nothing and emits no event, reported as ``already_recorded=True``, so a retried
Prefect task is safe; different content under a recorded key raises
:class:`~contracts.errors.LedgerConflictError`.

Typical use, from a task::

    ledger = Ledger.from_settings()
    result = ledger.record_round(task_id, 0, cid, sha, commitment, report_hash, metrics)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from eth.exceptions import TransactionNotFound as EvmTransactionNotFound
from eth_account import Account
from eth_tester.backends.pyevm import main as pyevm_backend
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import TransactionNotFound as TesterTransactionNotFound
from eth_utils import keccak
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractEvent, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound
from web3.logs import DISCARD
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.providers.eth_tester.defaults import API_ENDPOINTS as TESTER_API_ENDPOINTS
from web3.types import RPCEndpoint, RPCResponse, TxParams, TxReceipt

from contracts.anvil import LocalNode
from contracts.compiled import ChainContract, compiled
from contracts.errors import (
    LedgerConnectionError,
    LedgerManifestError,
    LedgerNotDurableError,
    LedgerTransactionFailedError,
    LedgerValueError,
)
from contracts.manifest import DeploymentManifest, manifest_path
from contracts.records import (
    BadgeMinted,
    Bytes32,
    DatasetRecord,
    GovernanceParams,
    QueryRecord,
    RecordResult,
    RoundMetrics,
    RoundRecord,
    TaskInfo,
    TxResult,
    VotingWeights,
    check_address,
    check_uint,
    to_bytes32,
)
from contracts.revert import revert_error
from flai.settings import Settings, get_settings

RECEIPT_TIMEOUT_S = 120.0
RPC_TIMEOUT_S = 30.0
CONFIRMATION_POLL_S = 0.5


class Role(Enum):
    """The AccessControl roles of the contracts (the value is the role's bytes32 id)."""

    DEFAULT_ADMIN = bytes(32)
    MINTER = keccak(text="MINTER_ROLE")  # FLAIToken, ContributionBadge
    REPUTATION = keccak(text="REPUTATION_ROLE")  # ContributionBadge
    # LineageRegistry: registerTask; DisclosureRegistry: registerDataset
    REGISTRAR = keccak(text="REGISTRAR_ROLE")
    # LineageRegistry: recordRound, recordQuery; DisclosureRegistry: charge; TaskRegistry: recordResult
    RECORDER = keccak(text="RECORDER_ROLE")
    # RewardDistributor: postEpochRoot; TaskRegistry: releasePool; InferenceMarket: setShares
    SETTLER = keccak(text="SETTLER_ROLE")
    SLASHER = keccak(text="SLASHER_ROLE")  # ProviderStaking: slash (the SuperDAO's timelock)
    PROPOSER = keccak(text="PROPOSER_ROLE")  # TimelockController: schedule (its Governor)
    CANCELLER = keccak(text="CANCELLER_ROLE")  # TimelockController: cancel (its Governor)
    PRICING = keccak(text="PRICING_ROLE")  # InferenceMarket: setTiers, setDynamics, setRowBudget
    OPERATOR = keccak(text="OPERATOR_ROLE")  # InferenceMarket: release, refund at any time


@dataclass(frozen=True)
class StakingTerms:
    """The time constants ``ProviderStaking`` is deployed with, in seconds.

    Stake leaves ``unbonding_delay_s`` after its unbonding request, which the contract
    requires to exceed an epoch plus the dispute window: misbehaviour in the last epoch a
    provider served in can still be slashed. Epochs are weekly (the settlement schedule).
    """

    epoch_length_s: int = 7 * 24 * 3600
    dispute_window_s: int = 2 * 24 * 3600
    unbonding_delay_s: int = 10 * 24 * 3600


STAKING_TERMS = StakingTerms()
"""The terms every deployment made by :class:`Ledger` uses; the treasury is the deployer."""

MARKET_FEE_BPS = 250
"""The inference market's protocol fee in every deployment made by :class:`Ledger`: 2.5% of
each released price, to the treasury (the deployer)."""

SUPER_DAO_NAME = "FLAI SuperDAO"
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class Durability:
    """When a mined transaction is durable, so that the Ledger may acknowledge it.

    A local anvil (``local_node``) keeps its chain in memory: its state is written to disk
    after every transaction. Any other node's block may still be replaced by a reorganisation:
    ``confirmations`` blocks must be mined on top of it first. The embedded chain lives and
    dies with this process: nothing to wait for.
    """

    confirmations: int = 0
    local_node: LocalNode | None = None


@dataclass(frozen=True, eq=False)
class Chain:
    """A connection to one chain, shared by every Ledger of the process that uses it.

    ``lock`` serialises sending: the embedded chain is not thread-safe, and one account's
    nonces must be taken in order.
    """

    web3: Web3
    url: str | None
    chain_id: int
    durability: Durability = Durability()
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def embedded(self) -> bool:
        return self.url is None

    def unlocked_account(self, index: int = 0) -> str:
        """The node's unlocked account ``index`` (the embedded chain and anvil have ten)."""
        accounts = self.web3.eth.accounts
        if index >= len(accounts):
            raise LedgerValueError(
                "account index", index, f"one of the node's {len(accounts)} unlocked accounts"
            )
        return accounts[index]

    def add_signer(self, private_key: str) -> str:
        """Signs transactions from ``private_key``'s account locally and returns its address."""
        try:
            account = Account.from_key(private_key)
        except (ValueError, TypeError) as exc:
            raise LedgerValueError("private_key", "(hidden)", "a 32-byte hex private key") from exc
        name = f"flai-signer-{account.address}"
        with self.lock:
            if name not in self.web3.middleware_onion:
                self.web3.middleware_onion.inject(
                    SignAndSendRawMiddlewareBuilder.build(account), name=name, layer=0
                )
        return account.address


def connect(url: str | None = None) -> Chain:
    """The process's connection to ``url``, or to the embedded chain when ``url`` is None.

    The embedded chain's state lives in this process, so there is one per process and every
    Ledger opened here shares it (with Prefect's RayTaskRunner each worker process would get
    its own: use a node URL there).

    A node that does not answer raises :class:`~contracts.errors.LedgerConnectionError`, now
    and on every later call. How a transaction becomes durable (:class:`Durability`) is
    settled here: the anvil that keeps its chain under ``<settings.data_dir>/chain`` (the
    stack's, or ``flai chain up``'s) if it is the node at ``url``, else
    ``settings.chain_confirmations`` blocks.
    """
    return _connect(url)


@cache
def _connect(url: str | None) -> Chain:
    if url is None:
        web3 = Web3(_tester_provider())
        return Chain(web3, None, web3.eth.chain_id)
    if not url.startswith(("http://", "https://")):
        raise LedgerValueError("url", url, "an http(s):// JSON-RPC URL, or None for the embedded chain")
    web3 = Web3(_Provider(url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
    try:
        chain_id = web3.eth.chain_id
    except ValueError as exc:  # something answers, but not JSON-RPC
        raise LedgerConnectionError(url, f"not a JSON-RPC answer: {exc}", "eth_chainId") from exc
    return Chain(web3, url, chain_id, _durability(url))


def _durability(url: str) -> Durability:
    settings = get_settings()
    node = LocalNode.serving(settings.data_dir / "chain", url)
    return Durability(local_node=node) if node else Durability(settings.chain_confirmations)


def _indexed_transaction_lookup(chain: Any, transaction_hash: bytes) -> tuple[Any, Any, int]:
    """A mined transaction's block, itself and its index, found through py-evm's index by hash.

    eth-tester 0.13's lookup walks back from the head block by block (its own TODO says so),
    and a log query reads each matching block's receipts that way: over a long-lived embedded
    chain (a test session, a long demo) reading the history costs the square of its length,
    minutes after a few thousand blocks. The pending head block is not indexed yet."""
    head = chain.get_block()
    for index, transaction in enumerate(head.transactions):
        if transaction.hash == transaction_hash:
            return head, transaction, index
    try:
        number, index = chain.chaindb.get_transaction_index(transaction_hash)
    except EvmTransactionNotFound:
        raise TesterTransactionNotFound(
            f"No transaction found for transaction hash: {transaction_hash.hex()}") from None
    block = chain.get_canonical_block_by_number(number)
    return block, block.transactions[index], index


def _tester_provider() -> EthereumTesterProvider:
    """The embedded chain, with revert data handed over whole.

    web3 8.0's provider reads the data of every revert of the embedded chain as
    ``Error(string)`` and keeps the raw bytes only when that fails. A custom error's arguments
    can read as a string, though: ``RewardDistributorAlreadyClaimed(32, 0)`` reads as the
    empty string (the data is lost, the error looks like ``require``'s), and
    ``RewardDistributorInvalidProof`` of epoch 64 as a string as long as an address (eth-abi
    raises OverflowError). Every endpoint here hands web3 the data's ``repr`` as text, which
    it passes on unread and :mod:`contracts.revert` decodes."""
    pyevm_backend._get_transaction_by_hash = _indexed_transaction_lookup
    return EthereumTesterProvider(
        api_endpoints={
            namespace: {name: _raw_revert_data(delegator) for name, delegator in endpoints.items()}
            for namespace, endpoints in TESTER_API_ENDPOINTS.items()
        }
    )


def _raw_revert_data(delegator: Callable[..., Any]) -> Callable[..., Any]:
    def delegate(tester: Any, params: Any) -> Any:
        try:
            return delegator(tester, params)
        except TransactionFailed as exc:
            data = exc.args[0] if exc.args else None
            if isinstance(data, Exception) and data.args:  # eth-tester may wrap py-evm's Revert
                data = data.args[0]
            if isinstance(data, bytes):
                raise TransactionFailed(repr(data)) from exc
            raise

    return delegate


class _Provider(HTTPProvider):
    """JSON-RPC over HTTP where a transport failure of any call, from any caller (the Ledger,
    event queries on its contracts, receipts), raises LedgerConnectionError: the one place it
    is mapped. (web3's own retries never see requests' errors: it retries the builtin
    ConnectionError only.)"""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except OSError as exc:  # requests' errors are OSErrors
            raise LedgerConnectionError(str(self.endpoint_uri), str(exc), method) from exc


class Ledger:
    """One deployment of FLAI's contracts, used from one account (``sender``)."""

    def __init__(
        self,
        chain: Chain,
        manifest: DeploymentManifest,
        sender: str,
        *,
        receipt_timeout_s: float = RECEIPT_TIMEOUT_S,
    ) -> None:
        """Use :meth:`open`, :meth:`deploy` or :meth:`attach`; this trusts the manifest unchecked."""
        self.chain = chain
        self.manifest = manifest
        self.sender = sender
        self.receipt_timeout_s = receipt_timeout_s
        self._contracts = {
            contract: chain.web3.eth.contract(address=address, abi=compiled(contract).abi)
            for contract, address in manifest.addresses.items()
        }

    # -- getting a Ledger ------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, private_key: str | None = None) -> Ledger:
        """The Ledger of the configured chain (``chain_url``; None: embedded), its manifest
        kept under ``<data_dir>/chain``."""
        settings = settings or get_settings()
        return cls.open(settings.data_dir / "chain", settings.chain_url, private_key=private_key)

    @classmethod
    def open(cls, state_dir: Path, url: str | None = None, *, private_key: str | None = None) -> Ledger:
        """Attaches to the deployment recorded under ``state_dir`` for this chain, or deploys
        one and records it there.

        The embedded chain starts empty in every process, so a manifest of it from another
        process points at nothing: then it deploys anew. On a node the same case raises
        :class:`~contracts.errors.LedgerManifestError` instead of silently forking lineage.

        The sender is ``private_key``'s account, or else the node's first unlocked account.

        A deployment made before a contract was added to FLAI (its manifest lacks it) gets
        that contract deployed next to the others, with the sender as its admin, and the
        manifest rewritten; the contracts it has keep their addresses and state.
        """
        chain = connect(url)
        sender = chain.add_signer(private_key) if private_key else chain.unlocked_account()
        with chain.lock:
            path = manifest_path(Path(state_dir), chain.chain_id)
            if path.exists():
                manifest = DeploymentManifest.load(path, partial=True)
                if not chain.embedded or _has_code(chain.web3, manifest):
                    _check_manifest(chain, manifest, path)
                    if manifest.missing:
                        manifest = _deploy_missing(chain, sender, manifest)
                        manifest.save(Path(state_dir))
                    return cls(chain, manifest, sender)
            ledger = cls.deploy(chain, sender)
            ledger.manifest.save(Path(state_dir))
            return ledger

    @classmethod
    def deploy(cls, chain: Chain, sender: str, governance: GovernanceParams | None = None) -> Ledger:
        """Deploys every :class:`ChainContract`; ``sender`` becomes admin, holds every role but
        the slasher's and receives slashed stake and the market's fees (the treasury).

        The SuperDAO (token-weighted, with ``governance``'s parameters; default: the
        settings') is its timelock's only proposer and canceller; the timelock owns the SubDAO
        factory and holds ``Role.SLASHER``, which the deployer gives up.
        """
        addresses, first_block = _deploy_contracts(chain, sender, tuple(ChainContract), {}, governance)
        manifest = DeploymentManifest(
            chain_id=chain.chain_id,
            deployment_block=first_block,
            deployer=sender,
            addresses=addresses,
        )
        return cls(chain, manifest, sender)

    @classmethod
    def attach(
        cls, chain: Chain, manifest: DeploymentManifest, sender: str, *, source: object = "manifest"
    ) -> Ledger:
        """The deployment ``manifest`` describes, after checking it is on this chain and
        complete (:meth:`open` deploys the contracts an older manifest lacks)."""
        _check_manifest(chain, manifest, source)
        if manifest.missing:
            names = ", ".join(contract.value for contract in manifest.missing)
            raise LedgerManifestError(
                source, f"has no address for {names}: Ledger.open deploys the contracts it lacks"
            )
        return cls(chain, manifest, sender)

    def as_sender(self, sender: str) -> Ledger:
        """The same deployment, sending from another account (unlocked, or added with a signer)."""
        return Ledger(
            self.chain, self.manifest, check_address(sender, "sender"), receipt_timeout_s=self.receipt_timeout_s
        )

    def contract(self, contract: ChainContract) -> Contract:
        """The web3 contract object, for reads and event queries the typed methods do not cover."""
        return self._contracts[contract]

    # -- lineage ----------------------------------------------------------------------------

    def register_task(self, task_id: Bytes32, owner: str, spec_cid: str, dataset_name: str) -> RecordResult:
        """Registers a training task (needs ``Role.REGISTRAR``); identical re-registration is a no-op."""
        registry = self._contracts[ChainContract.REGISTRY]
        call = registry.functions.registerTask(
            to_bytes32(task_id, "task_id"), check_address(owner, "owner"), spec_cid, dataset_name
        )
        return self.record(ChainContract.REGISTRY, call, registry.events.TaskRegistered())

    def record_round(
        self,
        task_id: Bytes32,
        round: int,
        model_cid: str,
        model_sha256: Bytes32,
        participants_commitment: Bytes32,
        quality_report_hash: Bytes32,
        metrics: RoundMetrics,
    ) -> RecordResult:
        """Records round ``round`` (counted from 0, in order) of a task (needs ``Role.RECORDER``).

        Recording identical content again returns ``already_recorded=True``; different content
        raises :class:`~contracts.errors.LedgerConflictError`.
        """
        registry = self._contracts[ChainContract.REGISTRY]
        call = registry.functions.recordRound(
            to_bytes32(task_id, "task_id"),
            check_uint(round, 32, "round"),
            model_cid,
            to_bytes32(model_sha256, "model_sha256"),
            to_bytes32(participants_commitment, "participants_commitment"),
            to_bytes32(quality_report_hash, "quality_report_hash"),
            metrics.as_tuple(),
        )
        return self.record(ChainContract.REGISTRY, call, registry.events.RoundRecorded())

    def record_query(
        self,
        query_id: Bytes32,
        sql_hash: Bytes32,
        participants_commitment: Bytes32,
        suppressed_groups: int,
        epsilon_spent_micro: int,
        result_hash: Bytes32,
    ) -> RecordResult:
        """Records an answered federated query (needs ``Role.RECORDER``); idempotent like rounds."""
        registry = self._contracts[ChainContract.REGISTRY]
        call = registry.functions.recordQuery(
            to_bytes32(query_id, "query_id"),
            to_bytes32(sql_hash, "sql_hash"),
            to_bytes32(participants_commitment, "participants_commitment"),
            check_uint(suppressed_groups, 32, "suppressed_groups"),
            check_uint(epsilon_spent_micro, 64, "epsilon_spent_micro"),
            to_bytes32(result_hash, "result_hash"),
        )
        return self.record(ChainContract.REGISTRY, call, registry.events.QueryRecorded())

    def get_task(self, task_id: Bytes32) -> TaskInfo:
        task_id = to_bytes32(task_id, "task_id")
        owner, block, count, spec_cid, dataset = self.read(
            ChainContract.REGISTRY, self._contracts[ChainContract.REGISTRY].functions.getTask(task_id)
        )
        return TaskInfo(task_id, owner, block, count, spec_cid, dataset)

    def round_count(self, task_id: Bytes32) -> int:
        """Rounds recorded for the task (0 for an unknown task); also the next round's number."""
        registry = self._contracts[ChainContract.REGISTRY]
        return self.read(
            ChainContract.REGISTRY, registry.functions.roundCount(to_bytes32(task_id, "task_id"))
        )

    def get_round(self, task_id: Bytes32, round: int) -> RoundRecord:
        task_id = to_bytes32(task_id, "task_id")
        registry = self._contracts[ChainContract.REGISTRY]
        sha, commitment, report, metrics, block, cid = self.read(
            ChainContract.REGISTRY, registry.functions.getRound(task_id, check_uint(round, 32, "round"))
        )
        return RoundRecord(task_id, round, cid, sha, commitment, report, RoundMetrics(*metrics), block)

    def rounds(self, task_id: Bytes32) -> list[RoundRecord]:
        """Every recorded round of the task, in order."""
        return [self.get_round(task_id, r) for r in range(self.round_count(task_id))]

    def get_query(self, query_id: Bytes32) -> QueryRecord:
        query_id = to_bytes32(query_id, "query_id")
        registry = self._contracts[ChainContract.REGISTRY]
        sql, commitment, result, epsilon, suppressed, block = self.read(
            ChainContract.REGISTRY, registry.functions.getQuery(query_id)
        )
        return QueryRecord(query_id, sql, commitment, result, epsilon, suppressed, block)

    # -- disclosure -------------------------------------------------------------------------

    def register_dataset(self, dataset_id: Bytes32, policy_hash: Bytes32, budget: int) -> RecordResult:
        """Registers a data set's disclosure policy (its sha256) and total privacy budget, in
        the additive cost unit of :meth:`charge_budget` (needs ``Role.REGISTRAR``).

        Registering identical content again returns ``already_recorded=True``; another policy
        or budget raises :class:`~contracts.errors.LedgerConflictError`.
        """
        disclosure = self._contracts[ChainContract.DISCLOSURE]
        call = disclosure.functions.registerDataset(
            to_bytes32(dataset_id, "dataset_id"),
            to_bytes32(policy_hash, "policy_hash"),
            check_uint(budget, 64, "budget"),
        )
        return self.record(ChainContract.DISCLOSURE, call, disclosure.events.DatasetRegistered())

    def charge_budget(self, dataset_id: Bytes32, query_id: Bytes32, cost: int) -> RecordResult:
        """Charges query ``query_id`` the privacy cost ``cost`` against a data set's budget,
        before any provider computes (needs ``Role.RECORDER``).

        Charging the same query the same cost again spends nothing and returns
        ``already_recorded=True``; another cost raises
        :class:`~contracts.errors.LedgerConflictError`, a cost past what is left
        :class:`~contracts.errors.LedgerBudgetExceededError` (``arguments["remaining"]``).
        """
        disclosure = self._contracts[ChainContract.DISCLOSURE]
        call = disclosure.functions.charge(
            to_bytes32(dataset_id, "dataset_id"),
            to_bytes32(query_id, "query_id"),
            check_uint(cost, 64, "cost"),
        )
        return self.record(ChainContract.DISCLOSURE, call, disclosure.events.BudgetCharged())

    def get_dataset(self, dataset_id: Bytes32) -> DatasetRecord:
        """A registered data set's policy hash and budget (what is spent, what remains)."""
        dataset_id = to_bytes32(dataset_id, "dataset_id")
        disclosure = self._contracts[ChainContract.DISCLOSURE]
        policy_hash, budget, spent, block = self.read(
            ChainContract.DISCLOSURE, disclosure.functions.getDataset(dataset_id)
        )
        return DatasetRecord(dataset_id, policy_hash, budget, spent, block)

    def charge_of(self, dataset_id: Bytes32, query_id: Bytes32) -> int:
        """The cost query ``query_id`` was charged against the data set; 0 if none."""
        disclosure = self._contracts[ChainContract.DISCLOSURE]
        call = disclosure.functions.chargeOf(
            to_bytes32(dataset_id, "dataset_id"), to_bytes32(query_id, "query_id")
        )
        return self.read(ChainContract.DISCLOSURE, call)

    # -- rewards ----------------------------------------------------------------------------

    def mint_tokens(self, to: str, amount: int) -> TxResult:
        """Mints ``amount`` FLAI base units (18 decimals) to ``to`` (needs ``Role.MINTER``)."""
        token = self._contracts[ChainContract.TOKEN]
        call = token.functions.mint(check_address(to, "to"), check_uint(amount, 256, "amount"))
        return tx_result(self.send(ChainContract.TOKEN, call))

    def delegate(self, delegatee: str) -> TxResult:
        """Delegates the sender's FLAI votes to ``delegatee`` (the sender itself, to vote with
        its own balance): ERC20Votes counts only delegated balances, and a token transfer
        writes vote checkpoints only for accounts that delegated."""
        token = self._contracts[ChainContract.TOKEN]
        return tx_result(self.send(ChainContract.TOKEN, token.functions.delegate(check_address(delegatee, "delegatee"))))

    def token_balance(self, account: str) -> int:
        token = self._contracts[ChainContract.TOKEN]
        return self.read(ChainContract.TOKEN, token.functions.balanceOf(check_address(account, "account")))

    def mint_badge(self, to: str) -> BadgeMinted:
        """Issues ``to`` its soul-bound contribution badge (needs ``Role.MINTER``; one per account)."""
        badge = self._contracts[ChainContract.BADGE]
        receipt = self.send(ChainContract.BADGE, badge.functions.mint(check_address(to, "to")))
        (minted,) = badge.events.Transfer().process_receipt(receipt, errors=DISCARD)
        return BadgeMinted(
            receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"], minted["args"]["tokenId"]
        )

    def burn_badge(self, token_id: int) -> TxResult:
        """Destroys a badge and its holder's reputation (its holder, or ``Role.MINTER``)."""
        badge = self._contracts[ChainContract.BADGE]
        return tx_result(
            self.send(ChainContract.BADGE, badge.functions.burn(check_uint(token_id, 256, "token_id")))
        )

    def badge_of(self, holder: str) -> int | None:
        """The badge id ``holder`` holds, or None."""
        badge = self._contracts[ChainContract.BADGE]
        return self.read(ChainContract.BADGE, badge.functions.badgeOf(check_address(holder, "holder"))) or None

    def badge_locked(self, token_id: int) -> bool:
        """ERC-5192 ``locked``: always True for an existing badge."""
        badge = self._contracts[ChainContract.BADGE]
        return self.read(ChainContract.BADGE, badge.functions.locked(check_uint(token_id, 256, "token_id")))

    def set_reputation(self, holder: str, score: int) -> TxResult:
        """Sets a badge holder's reputation (needs ``Role.REPUTATION``)."""
        badge = self._contracts[ChainContract.BADGE]
        call = badge.functions.setReputation(check_address(holder, "holder"), check_uint(score, 208, "score"))
        return tx_result(self.send(ChainContract.BADGE, call))

    def reputation_of(self, holder: str) -> int:
        badge = self._contracts[ChainContract.BADGE]
        return self.read(ChainContract.BADGE, badge.functions.reputationOf(check_address(holder, "holder")))

    # -- reward settlement ------------------------------------------------------------------

    def fund_rewards(self, amount: int) -> TxResult:
        """Pays ``amount`` of the sender's FLAI into the reward pool (approves, then funds)."""
        distributor = self._contracts[ChainContract.DISTRIBUTOR]
        self.approve(distributor.address, amount)
        return tx_result(self.send(ChainContract.DISTRIBUTOR, distributor.functions.fund(amount)))

    def rewards_available(self) -> int:
        """The funded pool not yet reserved by a posted epoch: the most the next epoch may total."""
        distributor = self._contracts[ChainContract.DISTRIBUTOR]
        return self.read(ChainContract.DISTRIBUTOR, distributor.functions.available())

    def post_epoch_root(self, epoch: int, root: Bytes32, total: int) -> RecordResult:
        """Posts an epoch's Merkle root and reserves ``total`` of the pool for its claims
        (needs ``Role.SETTLER``).

        Posting the same root and total again returns ``already_recorded=True``; another root
        or total raises :class:`~contracts.errors.LedgerConflictError`, a pool short of
        ``total`` :class:`~contracts.errors.LedgerInsufficientFundsError`.
        """
        distributor = self._contracts[ChainContract.DISTRIBUTOR]
        call = distributor.functions.postEpochRoot(
            check_uint(epoch, 256, "epoch"), to_bytes32(root, "root"), check_uint(total, 256, "total")
        )
        return self.record(ChainContract.DISTRIBUTOR, call, distributor.events.EpochPosted())

    def claim(
        self, epoch: int, index: int, account: str, amount: int, proof: Sequence[Bytes32]
    ) -> TxResult:
        """Pays leaf ``index`` of ``epoch`` to ``account`` (any sender may claim for it).

        A leaf already paid raises :class:`~contracts.errors.LedgerAlreadyClaimedError`; a
        proof that does not place the leaf under the epoch's root
        :class:`~contracts.errors.LedgerInvalidProofError`; an epoch never posted
        :class:`~contracts.errors.LedgerNotFoundError`.
        """
        distributor = self._contracts[ChainContract.DISTRIBUTOR]
        call = distributor.functions.claim(
            check_uint(epoch, 256, "epoch"),
            check_uint(index, 256, "index"),
            check_address(account, "account"),
            check_uint(amount, 256, "amount"),
            [to_bytes32(node, f"proof[{i}]") for i, node in enumerate(proof)],
        )
        return tx_result(self.send(ChainContract.DISTRIBUTOR, call))

    def is_claimed(self, epoch: int, index: int) -> bool:
        distributor = self._contracts[ChainContract.DISTRIBUTOR]
        call = distributor.functions.isClaimed(
            check_uint(epoch, 256, "epoch"), check_uint(index, 256, "index")
        )
        return self.read(ChainContract.DISTRIBUTOR, call)

    def epoch_root(self, epoch: int) -> bytes | None:
        """The Merkle root posted for ``epoch``, or None."""
        distributor = self._contracts[ChainContract.DISTRIBUTOR]
        call = distributor.functions.epochRoot(check_uint(epoch, 256, "epoch"))
        root = self.read(ChainContract.DISTRIBUTOR, call)
        return root if any(root) else None

    # -- staking ----------------------------------------------------------------------------

    def stake(self, amount: int) -> TxResult:
        """Bonds ``amount`` of the sender's FLAI (approves, then stakes)."""
        staking = self._contracts[ChainContract.STAKING]
        self.approve(staking.address, amount)
        return tx_result(self.send(ChainContract.STAKING, staking.functions.stake(amount)))

    def request_unbond(self, amount: int) -> TxResult:
        """Moves ``amount`` of the sender's bonded stake to unbonding; the delay restarts for
        all of its unbonding stake. More than is bonded raises
        :class:`~contracts.errors.LedgerInsufficientFundsError`."""
        staking = self._contracts[ChainContract.STAKING]
        call = staking.functions.requestUnbond(check_uint(amount, 256, "amount"))
        return tx_result(self.send(ChainContract.STAKING, call))

    def withdraw_stake(self) -> TxResult:
        """Pays the sender its unbonding stake once the delay has passed; before then raises
        :class:`~contracts.errors.LedgerTooEarlyError` (``arguments["withdrawableAt"]``)."""
        staking = self._contracts[ChainContract.STAKING]
        return tx_result(self.send(ChainContract.STAKING, staking.functions.withdraw()))

    def slash(self, provider: str, amount: int, reason: str) -> TxResult:
        """Sends ``amount`` of ``provider``'s stake (bonded first, then unbonding) to the
        treasury, recording ``reason`` in the ``Slashed`` event (needs ``Role.SLASHER``, which
        the SuperDAO's timelock holds: a deployment's slashes are SuperDAO proposals)."""
        staking = self._contracts[ChainContract.STAKING]
        call = staking.functions.slash(
            check_address(provider, "provider"), check_uint(amount, 256, "amount"), reason
        )
        return tx_result(self.send(ChainContract.STAKING, call))

    def stake_of(self, provider: str) -> int:
        """``provider``'s bonded stake: what counts for selection."""
        staking = self._contracts[ChainContract.STAKING]
        return self.read(ChainContract.STAKING, staking.functions.stakeOf(check_address(provider, "provider")))

    def unbonding_of(self, provider: str) -> tuple[int, int]:
        """``provider``'s unbonding stake and the timestamp it can be withdrawn from (0 if none)."""
        staking = self._contracts[ChainContract.STAKING]
        amount, withdrawable_at = self.read(
            ChainContract.STAKING, staking.functions.unbondingOf(check_address(provider, "provider"))
        )
        return amount, withdrawable_at

    def eligible(self, provider: str, minimum: int) -> bool:
        """Whether ``provider`` has bonded at least ``minimum``, the stake a task requires."""
        staking = self._contracts[ChainContract.STAKING]
        call = staking.functions.isEligible(
            check_address(provider, "provider"), check_uint(minimum, 256, "minimum")
        )
        return self.read(ChainContract.STAKING, call)

    # -- roles ------------------------------------------------------------------------------

    def grant_role(self, contract: ChainContract, role: Role, account: str) -> TxResult:
        """Grants ``role`` on ``contract`` (needs the role's admin, ``Role.DEFAULT_ADMIN``)."""
        call = self._contracts[contract].functions.grantRole(role.value, check_address(account, "account"))
        return tx_result(self.send(contract, call))

    def has_role(self, contract: ChainContract, role: Role, account: str) -> bool:
        call = self._contracts[contract].functions.hasRole(role.value, check_address(account, "account"))
        return self.read(contract, call)

    # -- plumbing, also for clients composed over a Ledger (governance, market) -------------
    # ``contract`` names the kind of contract ``call`` is on, for typed errors: a SubDAO's
    # Governor is of the ``ChainContract.SUPER_DAO`` kind as much as the SuperDAO is.

    def send(
        self, contract: ChainContract, call: ContractFunction, *, value: int = 0, nonce: int | None = None
    ) -> TxReceipt:
        """Sends ``call`` from the sender: its receipt once durable, or the typed revert.

        ``value`` is the wei a payable call pays. ``nonce`` pins the sender's account nonce, so
        that a retry after a lost receipt cannot become a second transaction (default: the next).
        """
        return _send(
            self.chain, self.sender, contract, call, self.receipt_timeout_s, value=value, nonce=nonce
        )

    def approve(self, spender: str, amount: int) -> TxResult:
        """Lets ``spender`` take ``amount`` of the sender's FLAI (before a contract pulls it)."""
        token = self._contracts[ChainContract.TOKEN]
        call = token.functions.approve(check_address(spender, "spender"), check_uint(amount, 256, "amount"))
        return tx_result(self.send(ChainContract.TOKEN, call))

    def read(self, contract: ChainContract, call: ContractFunction) -> Any:
        """Calls the view ``call`` as the sender; a revert raises its typed error."""
        return _guarded(contract, call.fn_name, lambda: call.call({"from": self.sender}))

    def record(self, contract: ChainContract, call: ContractFunction, event: ContractEvent) -> RecordResult:
        """Sends an idempotent record: ``already_recorded`` when it emitted no ``event``."""
        receipt = self.send(contract, call)
        emitted = event.process_receipt(receipt, errors=DISCARD)
        return RecordResult(
            receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"], already_recorded=not emitted
        )

def _send(
    chain: Chain,
    sender: str,
    contract: ChainContract,
    call: ContractFunction | ContractConstructor,
    timeout_s: float,
    *,
    value: int = 0,
    nonce: int | None = None,
) -> TxReceipt:
    """Sends ``call`` from ``sender`` (paying ``value`` wei, with account nonce ``nonce`` if
    given) and returns its receipt once the transaction is durable (:class:`Durability`):
    what it returns may be acknowledged.

    web3 estimates gas first, so a call that would revert raises before anything is sent. A
    transaction that still fails once mined (the state changed in between) is replayed as a
    call on the state after its block, to name the error.
    """
    label = call.fn_name if isinstance(call, ContractFunction) else "constructor"
    paid: TxParams = {"from": sender, "value": check_uint(value, 256, "value")}
    pinned: TxParams = paid if nonce is None else {**paid, "nonce": check_uint(nonce, 64, "nonce")}
    with chain.lock:
        tx_hash = _guarded(contract, label, lambda: call.transact(pinned))
        try:
            receipt = chain.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
        except TimeExhausted as exc:
            raise LedgerTransactionFailedError(
                contract.value, label, tx_hash.to_0x_hex(), f"no receipt in {timeout_s} s"
            ) from exc
    if receipt["status"] != 1:
        if isinstance(call, ContractFunction):
            _guarded(
                contract, label, lambda: call.call(paid, block_identifier=receipt["blockNumber"])
            )
        raise LedgerTransactionFailedError(
            contract.value, label, tx_hash.to_0x_hex(), "reverted without a reason"
        )
    return _durable(chain, receipt, contract, label, timeout_s)


def _durable(
    chain: Chain, receipt: TxReceipt, contract: ChainContract, label: str, timeout_s: float
) -> TxReceipt:
    """``receipt`` once durable: the local node's state written, or the confirmations mined
    (then the receipt of the block the transaction ended in, should a reorg have moved it)."""
    tx_hash = receipt["transactionHash"]
    node = chain.durability.local_node
    if node is not None:
        try:
            node.persist(chain.web3)
        except LedgerConnectionError:  # the node died after mining it: the block is lost
            raise
        except OSError as exc:
            raise LedgerNotDurableError(
                contract.value, label, tx_hash.to_0x_hex(), f"writing {node.state_file}: {exc}"
            ) from exc
        return receipt
    needed = chain.durability.confirmations
    if not needed:
        return receipt
    confirmed = _confirmed(chain, tx_hash, needed, timeout_s)
    if confirmed is None:
        raise LedgerNotDurableError(
            contract.value, label, tx_hash.to_0x_hex(),
            f"fewer than {needed} confirmations: no block was mined for {timeout_s} s",
        )
    return confirmed


def _confirmed(chain: Chain, tx_hash: bytes, needed: int, timeout_s: float) -> TxReceipt | None:
    """The receipt once ``needed`` blocks sit on top of the transaction's block; None if the
    chain mines nothing for ``timeout_s``. A transaction reorganised out counts again from
    the block it lands in."""
    eth = chain.web3.eth
    head, deadline = eth.block_number, time.monotonic() + timeout_s
    while True:
        try:
            receipt = eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:  # back in the mempool after a reorg
            receipt = None
        if receipt is not None and head - receipt["blockNumber"] >= needed:
            return receipt
        time.sleep(CONFIRMATION_POLL_S)
        latest = eth.block_number
        if latest != head:
            head, deadline = latest, time.monotonic() + timeout_s
        elif time.monotonic() > deadline:
            return None


def _guarded(contract: ChainContract, function: str, action: Callable[[], Any]) -> Any:
    """Runs ``action``, turning a revert into the typed error that names its Solidity error."""
    try:
        return action()
    except (ContractLogicError, TransactionFailed) as exc:
        raise revert_error(contract, function, exc) from exc


def _deploy_contracts(
    chain: Chain,
    sender: str,
    contracts: Sequence[ChainContract],
    deployed: Mapping[ChainContract, str],
    governance: GovernanceParams | None,
) -> tuple[dict[ChainContract, str], int]:
    """Deploys ``contracts`` (in :class:`ChainContract` order, so the token precedes what pays
    in it) next to ``deployed``, then hands the protocol's roles to the SuperDAO if it is
    among them; the addresses of all, and the block of the first deployed."""
    params = governance or GovernanceParams.from_settings(get_settings())
    addresses = dict(deployed)
    first_block = None
    for contract in contracts:
        receipt = _deploy_contract(chain, sender, contract, addresses, params)
        addresses[contract] = receipt["contractAddress"]
        first_block = first_block if first_block is not None else receipt["blockNumber"]
    if ChainContract.SUPER_TIMELOCK in contracts:
        _hand_over_to_super_dao(chain, sender, addresses)
    return addresses, first_block


def _deploy_contract(
    chain: Chain,
    sender: str,
    contract: ChainContract,
    deployed: Mapping[ChainContract, str],
    governance: GovernanceParams,
) -> TxReceipt:
    """Deploys ``contract`` with ``sender`` as its admin; ``deployed`` holds the addresses of
    the contracts deployed before it (the token, for the distributor, staking and the market;
    the factory and WETH, for the router)."""
    artifact = compiled(contract)
    factory = chain.web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    constructor = factory.constructor(*_constructor_args(contract, sender, deployed, governance))
    return _send(chain, sender, contract, constructor, RECEIPT_TIMEOUT_S)


def _constructor_args(
    contract: ChainContract, sender: str, deployed: Mapping[ChainContract, str], governance: GovernanceParams
) -> tuple[Any, ...]:
    if contract is ChainContract.SUPER_TIMELOCK:
        # No proposer yet (the Governor does not exist), anyone executes, the deployer is
        # admin until _hand_over_to_super_dao.
        return governance.timelock_delay_s, [], [ZERO_ADDRESS], sender
    if contract is ChainContract.SUPER_DAO:
        return (
            SUPER_DAO_NAME,
            deployed[ChainContract.TOKEN],
            deployed[ChainContract.BADGE],
            deployed[ChainContract.SUPER_TIMELOCK],
            governance.voting_delay_blocks,
            governance.voting_period_blocks,
            governance.proposal_threshold,
            governance.quorum_percent,
            VotingWeights.TOKEN.as_tuple(),
        )
    if contract is ChainContract.DAO_FACTORY:
        return (
            deployed[ChainContract.SUPER_TIMELOCK],  # the owner: SubDAOs come from SuperDAO proposals
            deployed[ChainContract.TOKEN],
            deployed[ChainContract.BADGE],
            keccak(hexstr=compiled(ChainContract.SUPER_DAO).bytecode),
        )
    if contract is ChainContract.TASKS:
        return (
            sender,
            deployed[ChainContract.TOKEN],
            deployed[ChainContract.DAO_FACTORY],
            deployed[ChainContract.DISTRIBUTOR],
        )
    if contract is ChainContract.DISTRIBUTOR:
        return sender, deployed[ChainContract.TOKEN]
    if contract is ChainContract.STAKING:
        terms = STAKING_TERMS
        return (
            sender,
            deployed[ChainContract.TOKEN],
            sender,  # the treasury
            terms.epoch_length_s,
            terms.dispute_window_s,
            terms.unbonding_delay_s,
        )
    if contract is ChainContract.MARKET:
        return sender, deployed[ChainContract.TOKEN], sender, MARKET_FEE_BPS  # the deployer is the treasury
    if contract is ChainContract.WETH:
        return ()
    if contract is ChainContract.UNISWAP_FACTORY:
        return (sender,)  # feeToSetter: the protocol's share of swap fees stays off until it sets one
    if contract is ChainContract.UNISWAP_ROUTER:
        return deployed[ChainContract.UNISWAP_FACTORY], deployed[ChainContract.WETH]
    return (sender,)


def _deploy_missing(chain: Chain, sender: str, manifest: DeploymentManifest) -> DeploymentManifest:
    """``manifest`` completed with the contracts it lacks, deployed now."""
    addresses, _ = _deploy_contracts(chain, sender, manifest.missing, manifest.addresses, None)
    return replace(manifest, addresses=addresses)


def _hand_over_to_super_dao(chain: Chain, sender: str, addresses: Mapping[ChainContract, str]) -> None:
    """The SuperDAO's Governor becomes its timelock's proposer and canceller, the timelock
    takes ``Role.SLASHER`` from the deployer and may reprice any model on the market (the
    deployer keeps ``Role.PRICING`` to list a settled model at the default tiers), and the
    deployer gives up the timelock's admin role: from here on only SuperDAO proposals slash or
    create SubDAOs."""
    timelock, staking, market = (
        chain.web3.eth.contract(address=addresses[contract], abi=compiled(contract).abi)
        for contract in (ChainContract.SUPER_TIMELOCK, ChainContract.STAKING, ChainContract.MARKET)
    )
    governor = addresses[ChainContract.SUPER_DAO]
    steps = (
        (ChainContract.SUPER_TIMELOCK, timelock.functions.grantRole(Role.PROPOSER.value, governor)),
        (ChainContract.SUPER_TIMELOCK, timelock.functions.grantRole(Role.CANCELLER.value, governor)),
        (ChainContract.STAKING, staking.functions.grantRole(Role.SLASHER.value, timelock.address)),
        (ChainContract.STAKING, staking.functions.revokeRole(Role.SLASHER.value, sender)),
        (ChainContract.MARKET, market.functions.grantRole(Role.PRICING.value, timelock.address)),
        (ChainContract.SUPER_TIMELOCK, timelock.functions.renounceRole(Role.DEFAULT_ADMIN.value, sender)),
    )
    for contract, call in steps:
        _send(chain, sender, contract, call, RECEIPT_TIMEOUT_S)


def _check_manifest(chain: Chain, manifest: DeploymentManifest, source: object) -> None:
    """Raises unless ``manifest`` is for this chain and its contracts have code here."""
    chain_id = chain.chain_id
    if manifest.chain_id != chain_id:
        raise LedgerManifestError(source, f"is for chain {manifest.chain_id}, connected to chain {chain_id}")
    missing = [
        f"{c.value} at {a}" for c, a in manifest.addresses.items() if not chain.web3.eth.get_code(a)
    ]
    if missing:
        raise LedgerManifestError(
            source,
            f"no contract code for {', '.join(missing)}: the chain was reset or this is another chain "
            "with the same id; remove the manifest to deploy anew",
        )


def _has_code(web3: Web3, manifest: DeploymentManifest) -> bool:
    return all(web3.eth.get_code(address) for address in manifest.addresses.values())


def tx_result(receipt: TxReceipt) -> TxResult:
    """The hash and block of a mined transaction (what a send that records nothing returns)."""
    return TxResult(receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"])
