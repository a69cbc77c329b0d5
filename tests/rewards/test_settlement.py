"""Reward settlement end to end on the embedded chain, through real Prefect runs: a governed
task approved by its SubDAO, two rounds of four providers recorded by ``record_contributions``,
its model accepted, one epoch settled from its escrowed pool, re-run, claimed, and the CLI's
``rewards show|claim`` and ``stake`` on the result; a rejected model pays nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import flow
from prefect.artifacts import Artifact
from typer.testing import CliRunner

from cli import app
from cli.rewards import flai_cell
from cli.demo import MODELER, POOL
from contracts import ChainContract, LedgerAlreadyClaimedError, Support, TaskState
from deployments.settlement import settle
from flai.rewards import epoch_tree
from flai.rewards.contributions import Contribution
from flows.reward_settlement import reward_settlement
from tasks.chain import ledger
from tasks.governance import governance
from tasks.settlement import (
    RecordedContributions,
    Settlement,
    SettlementError,
    gather_contributions,
    plan_settlement,
    post_root,
    provider_accounts,
    record_contributions,
    record_settlement,
    settlement_of,
    split_rewards,
    target_epoch,
)
from tests.dao import approved_task, vote_on_model

pytestmark = pytest.mark.usefixtures("prefect_server")


@flow
def training_round(task_id: str, round_number: int,
                   contributions: list[Contribution]) -> RecordedContributions:
    """Where the lead's training flow records a round's contributions: in a flow run."""
    return record_contributions(task_id, round_number, contributions)


@pytest.fixture(scope="module")
def names() -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{p}-{tag}" for p in ("alpha", "beta", "gamma", "delta")]


def trained(name: str, rounds: list[list[Contribution]]) -> bytes:
    """A governed task, approved, with ``rounds`` recorded and its result on chain."""
    task_id = approved_task(name)
    for number, contributions in enumerate(rounds, start=1):
        training_round(name, number, contributions)
    governance().record_result(task_id, f"bafymodel-{name}", f"bafyreport-{name}",
                               900_000, 950_000, 10_000, 20_000)
    return task_id


@pytest.fixture(scope="module")
def settled(names: list[str]) -> Iterator[tuple[Settlement, str]]:
    """A task trained over two rounds, its model accepted, then the epoch settled; yields it
    and the task's name."""
    a, b, c, d = names
    task = f"rewards-{uuid.uuid4().hex[:8]}"
    reward_settlement()  # models accepted by earlier tests of the session make their own epoch
    # Round 1 was valued; gamma's update made the model worse, delta failed the quality gate.
    first = [Contribution(a, 100, True, value=0.75), Contribution(b, 100, True, value=0.25),
             Contribution(c, 100, True, value=-0.5), Contribution(d, 0, False)]
    # Round 2 was not valued; delta dropped out of secure aggregation.
    second = [Contribution(a, 100, True), Contribution(b, 100, True), Contribution(c, 100, True),
              Contribution(d, 100, True, "died during secure aggregation")]
    task_id = trained(task, [first, second])
    assert reward_settlement() is None  # trained, not yet accepted: nothing to pay
    vote_on_model(task_id)
    yield reward_settlement(), task


def test_a_round_is_recorded_once(settled: tuple[Settlement, str], names: list[str]) -> None:
    _, task_id = settled
    again = training_round(task_id, 2, [Contribution(n, 100, True) for n in names[:3]]
                                 + [Contribution(names[3], 100, True, "died during secure aggregation")])
    assert again.already_recorded
    with pytest.raises(SettlementError, match="another contribution record"):
        training_round(task_id, 2, [Contribution(n, 100, True) for n in names])


def test_the_epoch_pays_by_the_rule_through_one_root(settled: tuple[Settlement, str],
                                                     names: list[str], data_dir: Path) -> None:
    settlement, _ = settled
    chain = ledger()
    a, b, c, d = names
    amounts = {r.provider: r.amount for r in settlement.split.rewards}
    assert set(names) == set(amounts)
    # Round 1 (half the pool): alpha 3/4, beta 1/4, gamma clipped to 0; round 2: thirds.
    # Three thirds leave 2 base units, which go to the first names by the remainder rule.
    ours = {a: POOL * 3 // 8 + POOL // 6, b: POOL // 8 + POOL // 6, c: POOL // 6, d: 0}
    assert {n: amounts[n] for n in names} == pytest.approx(ours, abs=1)
    assert sum(amounts.values()) == POOL == settlement.split.total
    tree = settlement.tree()
    assert chain.epoch_root(settlement.epoch) == tree.root
    posted = chain.contract(ChainContract.DISTRIBUTOR).events.EpochPosted().get_logs(
        argument_filters={"epoch": settlement.epoch}, from_block=chain.manifest.deployment_block)
    assert len(posted) == 1
    # The badge reputation rose by the rounds each provider was paid for.
    accounts = provider_accounts(names)
    assert [chain.reputation_of(accounts[n]) for n in names] == [2, 2, 1, 0]
    assert chain.badge_of(accounts[d]) is None
    # The settlement is in the store (its CID on chain) and under the data directory.
    assert settlement_of(chain, settlement.epoch) == settlement
    saved = json.loads((data_dir / "rewards" / f"epoch-{settlement.epoch}.json").read_text())
    assert saved["root"] == "0x" + tree.root.hex()
    assert (data_dir / "reports" / "rewards" / f"epoch-{settlement.epoch}.png").read_bytes()[:4] == b"\x89PNG"
    # The table and the chart are artifacts of the run.
    table = Artifact.get(f"reward-epoch-{settlement.epoch}")
    assert table is not None and table.type == "table"
    assert {row["provider"] for row in json.loads(table.data)} >= set(names)
    chart = Artifact.get(f"reward-chart-{settlement.epoch}")
    assert chart is not None and "data:image/png;base64," in chart.data
    assert table.flow_run_id is not None and table.flow_run_id == chart.flow_run_id


def test_a_rerun_posts_nothing_and_raises_nothing(settled: tuple[Settlement, str],
                                                  names: list[str]) -> None:
    settlement, _ = settled
    chain = ledger()
    accounts = provider_accounts(names)
    available, head = chain.rewards_available(), chain.chain.web3.eth.block_number
    again = reward_settlement(settlement.epoch)
    assert again == settlement
    assert reward_settlement() is None  # no model accepted since: no epoch consumed
    assert chain.rewards_available() == available
    distributor, badge = (chain.contract(ChainContract.DISTRIBUTOR), chain.contract(ChainContract.BADGE))
    assert not distributor.events.EpochPosted().get_logs(from_block=head + 1)
    assert not badge.events.ReputationChanged().get_logs(from_block=head + 1)
    assert [chain.reputation_of(accounts[n]) for n in names] == [2, 2, 1, 0]


def test_the_saved_proof_pays_once(settled: tuple[Settlement, str], names: list[str],
                                   data_dir: Path) -> None:
    settlement, _ = settled
    chain = ledger()
    saved = json.loads((data_dir / "rewards" / f"epoch-{settlement.epoch}.json").read_text())
    (alpha,) = [p for p in saved["providers"] if p["provider"] == names[0]]
    # The saved tree is the one anyone rebuilds from the saved payouts.
    rebuilt = epoch_tree(saved["epoch"], [(p["account"], p["amount"])
                                          for p in sorted(saved["providers"], key=lambda p: p["index"] or 0)
                                          if p["index"] is not None])
    assert "0x" + rebuilt.root.hex() == saved["root"]
    before = chain.token_balance(alpha["account"])
    chain.claim(saved["epoch"], alpha["index"], alpha["account"], alpha["amount"], alpha["proof"])
    assert chain.token_balance(alpha["account"]) == before + alpha["amount"]
    with pytest.raises(LedgerAlreadyClaimedError):
        chain.claim(saved["epoch"], alpha["index"], alpha["account"], alpha["amount"], alpha["proof"])
    assert chain.token_balance(alpha["account"]) == before + alpha["amount"]


def test_cli_shows_claims_and_stakes(settled: tuple[Settlement, str], names: list[str]) -> None:
    settlement, _ = settled
    runner = CliRunner()
    shown = runner.invoke(app, ["rewards", "show", "--epoch", str(settlement.epoch)])
    assert shown.exit_code == 0, shown.output
    beta = next(r for r in settlement.split.rewards if r.provider == names[1])
    assert names[1] in shown.output and names[3] in shown.output

    claimed = runner.invoke(app, ["rewards", "claim", names[1], "--epoch", str(settlement.epoch)])
    assert claimed.exit_code == 0, claimed.output
    chain = ledger()
    assert chain.token_balance(beta.account) == beta.amount
    twice = runner.invoke(app, ["rewards", "claim", names[1], "--epoch", str(settlement.epoch)])
    assert twice.exit_code == 1 and "claimed already: epoch" in twice.output
    assert twice.exception is None or isinstance(twice.exception, SystemExit)
    nothing = runner.invoke(app, ["rewards", "claim", names[3]])
    assert nothing.exit_code == 1 and "nothing to claim" in nothing.output
    unsettled = runner.invoke(app, ["rewards", "show", "--epoch", "999"])
    assert unsettled.exit_code == 1 and "not settled" in unsettled.output

    # beta stakes part of its reward, starts unbonding it, and cannot withdraw it yet.
    staked = runner.invoke(app, ["stake", "deposit", names[1], "10"])
    assert staked.exit_code == 0, staked.output
    assert chain.stake_of(beta.account) == 10 * 10**18
    assert chain.token_balance(beta.account) == beta.amount - 10 * 10**18
    too_much = runner.invoke(app, ["stake", "deposit", names[1], "1000000"])
    assert too_much.exit_code == 1 and "less than" in too_much.output
    assert runner.invoke(app, ["stake", "unbond", names[1], "4"]).exit_code == 0
    early = runner.invoke(app, ["stake", "withdraw", names[1]])
    assert early.exit_code == 1 and "still unbonding" in early.output
    table = runner.invoke(app, ["stake", "show", names[1], names[3]])  # delta never had gas
    assert table.exit_code == 0, table.output
    (row,) = [line.split("│")[2:5] for line in table.output.splitlines() if line.startswith(f"│ {names[1]}")]
    assert [cell.strip() for cell in row] == [flai_cell(beta.amount - 10 * 10**18), "6.000000", "4.000000"]
    assert f"{names[3]}: {provider_accounts([names[3]])[names[3]]}" in table.output
    assert runner.invoke(app, ["stake", "deposit", names[1], "-3"]).exit_code == 2
    settled_again = runner.invoke(app, ["rewards", "settle", "--epoch", str(settlement.epoch)])
    assert settled_again.exit_code == 0 and "root 0x" + settlement.tree().root.hex() in settled_again.output
    ahead = runner.invoke(app, ["rewards", "settle", "--epoch", str(settlement.epoch + 5)])
    assert ahead.exit_code == 1 and "settled in order" in ahead.output


def test_a_run_that_died_before_posting_is_finished_by_the_next(settled: tuple[Settlement, str],
                                                                names: list[str]) -> None:
    """The settlement was recorded, the root never posted: the next run posts exactly it."""
    chain = ledger()
    task = f"rewards-{uuid.uuid4().hex[:8]}"
    vote_on_model(trained(task, [[Contribution(n, 50, True, value=0.5) for n in names]]))
    target = target_epoch.fn(None)
    gathered = gather_contributions.fn(target.after_block)
    assert [(r.task_id, r.round_number) for r in gathered.records] == [(task, 1)]
    planned = plan_settlement.fn(target, gathered, split_rewards.fn(gathered))
    record_settlement.fn(planned)
    assert chain.epoch_root(planned.epoch) is None
    finished = reward_settlement()
    assert finished == planned and chain.epoch_root(planned.epoch) == planned.tree().root
    assert {r.amount for r in finished.split.rewards if r.provider in names} == {POOL // 4}
    assert [chain.reputation_of(a) for a in provider_accounts(names).values()] == [3, 3, 2, 1]
    assert reward_settlement() is None


def test_a_run_that_died_before_reputation_is_finished_by_the_next(settled: tuple[Settlement, str],
                                                                   names: list[str]) -> None:
    """The root was posted, the reputations not raised: the next run raises them, once."""
    chain = ledger()
    task = f"rewards-{uuid.uuid4().hex[:8]}"
    vote_on_model(trained(task, [[Contribution(n, 50, True) for n in names]]))
    target = target_epoch.fn(None)
    gathered = gather_contributions.fn(target.after_block)
    planned = plan_settlement.fn(target, gathered, split_rewards.fn(gathered))
    record_settlement.fn(planned)
    post_root.fn(planned)
    assert reward_settlement() == planned
    assert [chain.reputation_of(a) for a in provider_accounts(names).values()] == [4, 4, 3, 2]
    assert reward_settlement() is None


def test_the_deployment_flow_returns_json(settled: tuple[Settlement, str], names: list[str]) -> None:
    settlement, _ = settled
    result = settle(settlement.epoch)
    assert json.loads(json.dumps(result)) == result
    assert result["root"] == "0x" + settlement.tree().root.hex()
    assert {n: int(result["amounts"][n]) for n in names} == {r.provider: r.amount
                                                             for r in settlement.split.rewards
                                                             if r.provider in names}
    assert settle() == {"epoch": None, "tasks": [], "rounds": 0}


def test_a_rejected_model_pays_nothing_and_refunds_the_modeler(settled: tuple[Settlement, str],
                                                               names: list[str]) -> None:
    chain, dao = ledger(), governance()
    modeler = provider_accounts([MODELER])[MODELER]
    task = f"rewards-{uuid.uuid4().hex[:8]}"
    task_id = trained(task, [[Contribution(n, 50, True) for n in names]])
    before, available = chain.token_balance(modeler), chain.rewards_available()
    vote_on_model(task_id, Support.AGAINST)
    dao.close_defeated(task_id)
    assert dao.task(task_id).state is TaskState.MODEL_REJECTED
    assert chain.token_balance(modeler) == before + POOL  # the pool went back
    assert reward_settlement() is None and chain.rewards_available() == available
