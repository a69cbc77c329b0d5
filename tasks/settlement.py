"""The steps of reward settlement, and the record of a round's contributions they start from.

Both records are CIDs on chain, kept in ``LineageRegistry`` as keyed CID records: a
``registerTask`` under a derived key, whose ``specCid`` is the record's CID and whose
``datasetName`` names the kind of record (:data:`CONTRIBUTIONS_KIND`, :data:`SETTLEMENT_KIND`).
That record is idempotent (identical content again is a no-op), refuses other content under
a recorded key, and announces itself with a ``TaskRegistered`` event, which is how a
settlement finds the rounds recorded since the last one; no contract had to change.

- ``contributions/<task>/round-<n>``: a round's :class:`ContributionRecord`.
- ``settlement/epoch-<n>``: a :class:`Settlement`: which tasks the epoch pays (those whose
  model their DAO accepted in blocks ``after_block + 1 .. through_block``, each with the pool
  its modeler escrowed) and their rounds' contribution records, the split, the Merkle tree with
  every proof, and each provider's reputation before and after.

Only accepted models pay: an ungoverned job, or one whose model was rejected (its pool went
back to its modeler), is never in an epoch, whatever it recorded.

A settlement is recorded on chain **before** its pools are released and its root posted: from
then on the epoch is fixed, and a retried step or a re-run of the epoch rebuilds nothing; it
releases what the registry still escrows, posts the recorded root (a no-op once posted) and
sets the recorded reputations (a no-op once set).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any
from uuid import UUID

from matplotlib.figure import Figure
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from contracts import (
    Ledger,
    LedgerConflictError,
    LedgerNotFoundError,
    LedgerTransactionFailedError,
    RecordResult,
    TaskState,
    keccak_id,
)
from contracts.market import ONE, Market
from flai.crypto import KeyStore
from flai.reporting import artifact_key
from flai.rewards import EpochTree, epoch_tree
from flai.rewards.contributions import (
    ACCOUNT_KEY_MATERIAL,
    Contribution,
    ContributionRecord,
    provider_account,
    provider_key,
)
from flai.rewards.split import EpochSplit, ProviderReward, split_epoch, split_tasks
from flai.settings import get_settings
from flai.storage import StorageDaemonError
from tasks.chain import ledger
from tasks.governance import governance
from tasks.publish import content_store

CONTRIBUTIONS_KIND = "flai.contributions/1"
SETTLEMENT_KIND = "flai.settlement/1"


class SettlementError(RuntimeError):
    """A settlement step cannot go on; ``epoch`` is the epoch it was settling (None: a round's
    contribution record)."""

    def __init__(self, epoch: int | None, problem: str) -> None:
        super().__init__(problem if epoch is None else f"epoch {epoch}: {problem}")
        self.epoch = epoch
        self.problem = problem


def contributions_key(task_id: str, round_number: int) -> bytes:
    return keccak_id(f"contributions/{task_id}/round-{round_number}")


def settlement_key(epoch: int) -> bytes:
    return keccak_id(f"settlement/epoch-{epoch}")


def provider_accounts(providers: Sequence[str]) -> dict[str, str]:
    """The account each provider is paid at (:func:`flai.rewards.contributions.provider_account`)."""
    material = _key_material()
    return {name: provider_account(name, material) for name in providers}


def provider_signer(chain: Ledger, provider: str) -> Ledger:
    """The deployment seen from ``provider``'s own account, which signs locally."""
    return chain.as_sender(chain.chain.add_signer(provider_key(provider, _key_material())))


GAS_FLOAT = 10**17  # wei the coordinator sends a named account that cannot pay for a transaction


def funded_signer(name: str, at_least: int = GAS_FLOAT // 10) -> Ledger:
    """The deployment seen from the account the data directory derives for ``name`` (a
    provider, a DAO member, a modeler, a consumer), which signs locally. Holding less than
    ``at_least`` wei (gas money, by default), it is sent what it lacks plus a gas float by the
    coordinator's account (the coordinator holds the data directory its key comes from)."""
    chain = ledger()
    signer = provider_signer(chain, name)
    web3 = chain.chain.web3
    balance = web3.eth.get_balance(signer.sender)
    if balance < at_least:
        with chain.chain.lock:
            tx = web3.eth.send_transaction({"from": chain.sender, "to": signer.sender,
                                            "value": at_least - balance + GAS_FLOAT})
            web3.eth.wait_for_transaction_receipt(tx)
    return signer


def _key_material() -> bytes:
    return KeyStore.for_data_dir(get_settings().data_dir).load_or_create(ACCOUNT_KEY_MATERIAL)


def _transient(task, task_run, state) -> bool:
    """Retry when the node or the IPFS daemon was briefly unavailable; every step is idempotent."""
    return isinstance(state.data, (OSError, LedgerTransactionFailedError, StorageDaemonError))


# -- a round's contributions --------------------------------------------------------------


@dataclass(frozen=True)
class RecordedContributions:
    cid: str
    tx_hash: str
    block_number: int
    already_recorded: bool


@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def record_contributions(task_id: str, round_number: int,
                         contributions: Sequence[Contribution]) -> RecordedContributions:
    """Store round ``round_number``'s contribution record (canonical JSON) and record its CID
    on chain, where the next settlement finds it. Recording it again is a no-op; another
    record for the same round raises :class:`SettlementError`."""
    record = ContributionRecord.of(task_id, round_number, contributions,
                                   provider_accounts([c.provider for c in contributions]))
    chain, store = ledger(), content_store()
    cid = store.put(record.to_json())
    store.pin(cid)
    try:
        result = chain.register_task(contributions_key(task_id, round_number), chain.sender, cid,
                                     CONTRIBUTIONS_KIND)
    except LedgerConflictError as error:
        raise SettlementError(None, f"round {round_number} of {task_id!r} already has another "
                              "contribution record on chain") from error
    return RecordedContributions(cid, result.tx_hash, result.block_number, result.already_recorded)


# -- an epoch's settlement ----------------------------------------------------------------


@dataclass(frozen=True)
class TaskPool:
    """An accepted task an epoch pays: what its modeler escrowed for its contributors."""

    task: str
    pool: int  # FLAI base units
    accepted_block: int


@dataclass(frozen=True)
class ReputationChange:
    provider: str
    account: str
    before: int  # read when the epoch was planned
    after: int  # before + the rounds the provider was paid for in the epoch


@dataclass(frozen=True)
class Settlement:
    """An epoch, fixed: what it covers, what it pays, and the tree that pays it."""

    epoch: int
    after_block: int
    through_block: int
    tasks: tuple[TaskPool, ...]  # the accepted tasks it pays, in the order they were accepted
    records: tuple[str, ...]  # their contribution records' CIDs, task by task, round by round
    split: EpochSplit
    smoothing: float
    reputation: tuple[ReputationChange, ...]

    @property
    def paid(self) -> tuple[ProviderReward, ...]:
        """The rewards with an amount, in leaf order."""
        return tuple(r for r in self.split.rewards if r.amount)

    def tree(self) -> EpochTree | None:
        """The epoch's Merkle tree (leaf i pays ``paid[i]``); None when nothing is paid."""
        return epoch_tree(self.epoch, [(r.account, r.amount) for r in self.paid]) if self.paid else None

    def to_json(self) -> bytes:
        """Everything a provider needs to claim without trusting the settler: each leaf's
        index and proof, and the tree in ``@openzeppelin/merkle-tree``'s dump format."""
        tree = self.tree()
        leaves = {r.provider: i for i, r in enumerate(self.paid)}
        providers = [{**r.__dict__, "index": leaves.get(r.provider),
                      "proof": ["0x" + p.hex() for p in tree.proof(leaves[r.provider])]
                      if r.provider in leaves else []} for r in self.split.rewards]
        document = {
            "format": SETTLEMENT_KIND, "epoch": self.epoch, "after_block": self.after_block,
            "through_block": self.through_block, "records": list(self.records),
            "tasks": [task.__dict__ for task in self.tasks],
            "pool": self.split.pool, "smoothing": self.smoothing, "rounds": self.split.rounds,
            "paying_rounds": self.split.paying_rounds, "providers": providers,
            "reputation": [change.__dict__ for change in self.reputation],
            "root": "0x" + tree.root.hex() if tree else None, "total": self.split.total,
            "tree": tree.to_json() if tree else None,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Settlement:
        document: dict[str, Any] = json.loads(data)
        if document.get("format") != SETTLEMENT_KIND:
            raise SettlementError(document.get("epoch"), f"not a {SETTLEMENT_KIND} document")
        fields = set(ProviderReward.__dataclass_fields__)
        rewards = tuple(ProviderReward(**{k: v for k, v in p.items() if k in fields})
                        for p in document["providers"])
        settlement = cls(
            document["epoch"], document["after_block"], document["through_block"],
            tuple(TaskPool(**task) for task in document["tasks"]), tuple(document["records"]),
            EpochSplit(document["pool"], document["rounds"], document["paying_rounds"], rewards),
            document["smoothing"], tuple(ReputationChange(**c) for c in document["reputation"]))
        tree = settlement.tree()
        if ("0x" + tree.root.hex() if tree else None) != document["root"]:
            raise SettlementError(settlement.epoch, "its payouts do not give the recorded root")
        return settlement


def settlement_of(chain: Ledger, epoch: int) -> Settlement | None:
    """Epoch ``epoch``'s settlement as recorded on chain, or None."""
    cid = _settlement_cid(chain, epoch)
    return Settlement.from_json(content_store().get(cid)) if cid else None


def last_settled(chain: Ledger) -> int:
    """The last epoch with a recorded settlement (epochs count from 1 without gaps); 0 if none."""
    epoch = 0
    while _settlement_cid(chain, epoch + 1):
        epoch += 1
    return epoch


def _settlement_cid(chain: Ledger, epoch: int) -> str | None:
    try:
        return chain.get_task(settlement_key(epoch)).spec_cid
    except LedgerNotFoundError:
        return None


@dataclass(frozen=True)
class EpochTarget:
    """The epoch a run settles: recorded already (``settlement`` set), or new after ``after_block``."""

    epoch: int
    after_block: int
    settlement: Settlement | None


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def target_epoch(epoch: int | None) -> EpochTarget:
    """Which epoch to settle: ``epoch``, or the next one, unless a failed run left the last
    recorded settlement unfinished, which is then finished first."""
    chain = ledger()
    last = last_settled(chain)
    if epoch is None:
        recorded = settlement_of(chain, last) if last else None
        if recorded and not _finished(chain, recorded):
            return EpochTarget(last, recorded.after_block, recorded)
        epoch = last + 1
    if not 1 <= epoch <= last + 1:
        raise SettlementError(epoch, f"epochs are settled in order; the next one is {last + 1}")
    if epoch <= last:
        recorded = settlement_of(chain, epoch)
        return EpochTarget(epoch, recorded.after_block, recorded)
    previous = settlement_of(chain, last) if last else None
    after = previous.through_block if previous else chain.manifest.deployment_block - 1
    return EpochTarget(epoch, after, None)


def _finished(chain: Ledger, settlement: Settlement) -> bool:
    """Its root is posted (if it pays) and no reputation is still at its value before the epoch."""
    if settlement.paid and chain.epoch_root(settlement.epoch) is None:
        return False
    return all(chain.reputation_of(change.account) != change.before for change in settlement.reputation)


@dataclass(frozen=True)
class Gathered:
    through_block: int
    tasks: tuple[TaskPool, ...]
    cids: tuple[str, ...]
    records: tuple[ContributionRecord, ...]


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def gather_contributions(after_block: int) -> Gathered:
    """The tasks whose models were accepted after ``after_block``, up to the head now, in the
    order they were accepted, with their rounds' contribution records; each record checked to
    be the one of the round it is under."""
    chain, store = ledger(), content_store()
    through = chain.chain.web3.eth.block_number
    tasks, cids, records = [], [], []
    for accepted in governance().accepted_between(after_block + 1, through):
        tasks.append(TaskPool(accepted.name, accepted.pool, accepted.accepted_block))
        # A paid job records every round it trains, from round 1 on, resumed or not.
        for round_number in count(1):
            try:
                cid = chain.get_task(contributions_key(accepted.name, round_number)).spec_cid
            except LedgerNotFoundError:
                break
            record = ContributionRecord.from_json(store.get(cid))
            if (record.task_id, record.round_number) != (accepted.name, round_number):
                raise SettlementError(None, f"record {cid} is not the one of its key")
            cids.append(cid)
            records.append(record)
    return Gathered(through, tuple(tasks), tuple(cids), tuple(records))


@task
def split_rewards(gathered: Gathered) -> EpochSplit:
    """The reward rule (``flai.rewards.split``): each accepted task's pool over its own rounds,
    with the configured smoothing."""
    by_task = [([r for r in gathered.records if r.task_id == pool.task], pool.pool)
               for pool in gathered.tasks]
    return split_tasks(by_task, get_settings().reward_value_smoothing)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=2, retry_condition_fn=_transient)
def plan_settlement(target: EpochTarget, gathered: Gathered, split: EpochSplit) -> Settlement:
    """The epoch's settlement, with each paid provider's reputation as it stands now."""
    chain = ledger()
    changes = tuple(ReputationChange(r.provider, r.account, before, before + r.paid_rounds)
                    for r in split.rewards if r.paid_rounds
                    for before in (chain.reputation_of(r.account),))
    return Settlement(target.epoch, target.after_block, gathered.through_block, gathered.tasks,
                      gathered.cids, split, get_settings().reward_value_smoothing, changes)


@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def record_settlement(settlement: Settlement) -> RecordResult:
    """Store the settlement (content store and ``<data_dir>/rewards/epoch-<n>.json``) and
    record its CID on chain: the epoch is fixed from here on."""
    chain, store, data = ledger(), content_store(), settlement.to_json()
    cid = store.put(data)
    store.pin(cid)
    path = get_settings().data_dir / "rewards" / f"epoch-{settlement.epoch}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    try:
        return chain.register_task(settlement_key(settlement.epoch), chain.sender, cid, SETTLEMENT_KIND)
    except LedgerConflictError as error:
        raise SettlementError(settlement.epoch, "another settlement was recorded first") from error


@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def post_root(settlement: Settlement) -> RecordResult | None:
    """Release the epoch's escrowed pools into the reward pool (each once: the registry marks
    a released task settled), then post the root. None when the epoch pays nothing."""
    chain, dao = ledger(), governance()
    for pool in settlement.tasks:
        if dao.task(keccak_id(pool.task)).state is TaskState.ACCEPTED:
            dao.release_pool(keccak_id(pool.task))
    tree = settlement.tree()
    if tree is None:
        return None
    if chain.epoch_root(settlement.epoch) is None and chain.rewards_available() < tree.total:
        raise SettlementError(settlement.epoch, f"the reward pool holds "
                              f"{chain.rewards_available()} base units, the epoch pays {tree.total}")
    return chain.post_epoch_root(settlement.epoch, tree.root, tree.total)


@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def raise_reputation(settlement: Settlement) -> tuple[str, ...]:
    """Give each paid provider its badge (once) and its recorded reputation after the epoch.

    Set only while the score is still the one read when the epoch was planned: a re-run finds
    it raised already and leaves it. Returns the providers raised by this call.
    """
    chain, raised = ledger(), []
    for change in settlement.reputation:
        if chain.badge_of(change.account) is None:
            chain.mint_badge(change.account)
        current = chain.reputation_of(change.account)
        if current == change.before:
            chain.set_reputation(change.account, change.after)
            raised.append(change.provider)
        elif current != change.after:
            get_run_logger().warning(
                "epoch %d: reputation of %s is %d, neither %d (before) nor %d (after): left as is",
                settlement.epoch, change.provider, current, change.before, change.after)
    return tuple(raised)


@task(cache_policy=NO_CACHE, retries=5, retry_delay_seconds=[2, 4, 8, 16, 32],
      retry_condition_fn=_transient)
def list_models(settlement: Settlement) -> tuple[str, ...]:
    """Offer each model the epoch paid for to paid inference: its revenue goes to the task's
    contributors in proportion to what they were paid for it (set once), at the listing
    prices and row budget of the settings unless priced already (its SubDAO may reprice it).
    Returns the models listed by this call."""
    market, store, settings = Market(ledger()), content_store(), get_settings()
    records = [ContributionRecord.from_json(store.get(cid)) for cid in settlement.records]
    listed = []
    for pool in settlement.tasks:
        model = keccak_id(pool.task)
        split = split_epoch([r for r in records if r.task_id == pool.task], pool.pool,
                            settlement.smoothing)
        paid = [r for r in split.rewards if r.amount]
        if paid:
            market.set_shares(model, [r.account for r in paid], [r.amount for r in paid])
        if not market.prices(model).tiers:  # tiers go last: a model with tiers is fully listed
            market.set_row_budget(model, settings.inference_rows_per_consumer)
            low, high = settings.inference_multiplier_bounds
            market.set_dynamics(model, settings.inference_demand_target, settings.inference_window_s,
                                round(low * ONE), round(high * ONE))
            market.set_tiers(model, list(settings.inference_tiers), list(settings.inference_tiers.values()))
            listed.append(pool.task)
    return tuple(listed)


def settlement_chart_png(settlement: Settlement) -> bytes:
    """A bar chart of each provider's amount (FLAI) in the epoch."""
    rewards = settlement.split.rewards
    # A bare Figure, not pyplot: no backend or global figure registry, safe in task threads.
    figure = Figure(figsize=(max(4.0, 1.2 * len(rewards)), 3.5), dpi=100)
    axes = figure.subplots()
    axes.bar([r.provider for r in rewards], [r.amount / 10**18 for r in rewards])
    axes.set_ylabel("FLAI")
    axes.set_title(f"epoch {settlement.epoch}: {settlement.split.total / 10**18:g} FLAI over "
                   f"{settlement.split.paying_rounds} paying round(s)")
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@task(cache_policy=NO_CACHE)
def report_settlement(settlement: Settlement) -> UUID:
    """The epoch's table and bar chart on the run (the chart also under
    ``<data_dir>/reports/rewards/`` and in the content store)."""
    rows = [{"provider": r.provider, "account": r.account, "rounds": r.rounds,
             "paid rounds": r.paid_rounds, "value": "" if r.value is None else f"{r.value:.4f}",
             "share": f"{r.share:.2%}", "FLAI": f"{r.amount / 10**18:.6f}"}
            for r in settlement.split.rewards]
    tree = settlement.tree()
    key = artifact_key("reward-epoch", str(settlement.epoch))
    create_table_artifact(rows, key=key, description=(
        f"**Epoch {settlement.epoch}**: {len(settlement.tasks)} accepted task(s) "
        f"({', '.join(t.task for t in settlement.tasks)}), {len(settlement.records)} round(s), pool "
        f"{settlement.split.pool / 10**18:g} FLAI, paid {settlement.split.total / 10**18:g} FLAI; "
        f"root `{'0x' + tree.root.hex() if tree else 'none'}`."))
    png = settlement_chart_png(settlement)
    path = get_settings().data_dir / "reports" / "rewards" / f"epoch-{settlement.epoch}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    store = content_store()
    cid = store.put(png)
    store.pin(cid)
    return create_markdown_artifact(
        f"# Rewards of epoch {settlement.epoch}\n\n"
        f"![rewards](data:image/png;base64,{base64.b64encode(png).decode()})\n\n"
        f"File: `{path}`  \nContent store CID: `{cid}`\n",
        key=artifact_key("reward-chart", str(settlement.epoch)))
