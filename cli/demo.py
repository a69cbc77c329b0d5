"""``flai demo``: a governed job's whole life on the embedded defaults, in one process.

The hospitals are the DAO's members (each holds a soul-bound badge and FLAI); a modeler
escrows a pool and proposes the task; the healthcare SubDAO votes it through its timelock; the
governance sync trains it (every round valued in MPC) and opens the validation vote on its
accuracy and fairness; the members accept the model; the sync settles the epoch and a
hospital claims its reward. Then the same model trained centrally, for comparison. The chain
is a development chain: the demo moves its blocks and clock past each voting period and
timelock delay, as OpenZeppelin's Governor tests do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
from cli.training import compare_with_central, new_task_id, preflight
from flai.datasets import Dataset, partitioning_for
from flai.learning.config import FitConfig, JobSpec, ModelKind

if TYPE_CHECKING:
    from contracts import Governance
    from tasks.governance import ValidationReport

console = Console()

DOMAINS = {Dataset.HEART: "healthcare", Dataset.CENSUS: "economics"}
MODELER = "modeler"
POOL = 1000 * 10**18  # FLAI base units the modeler escrows for the contributors
GRANT = 100 * 10**18  # FLAI each member receives from the treasury to vote with
CONSUMER = "clinic"
CONSUMER_ETH = 10**18  # what the clinic spends on FLAI
POOL_FLAI, POOL_ETH = 10_000 * 10**18, 10 * 10**18  # the treasury's liquidity: 1 ETH = ~1,000 FLAI


@app.command()
def demo(
    dataset: Annotated[Dataset, typer.Option(help="heart: 4 real hospitals; census: Dirichlet")] = Dataset.HEART,
    providers: Annotated[int | None, typer.Option(help="provider count (census only)")] = None,
    rounds: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    """A governed, paid training job from proposal to claim, then the central baseline."""
    # Every check first: bad input is one line and exit code 2, before anything loads.
    how = partitioning_for(dataset, providers)
    preflight(dataset, how, 0.0, FitConfig().learning_rate, 0)
    from actors.federation import federation_for
    from cli.dao import (
        governance_as,
        pass_proposal,
        proposals_table,
        submit_task,
        tasks_table,
    )
    from cli.inference import infer
    from cli.lineage import print_history
    from cli.rewards import claim, flai_text, settlement_table
    from contracts import Support
    from contracts.market import Market
    from flai.inference import Backend
    from flai.settings import get_settings
    from flows.governance_sync import governance_sync
    from tasks.governance import validation_report
    from tasks.lineage import verify_history
    from tasks.settlement import last_settled, provider_accounts, settlement_of

    settings = get_settings()
    with console.status(f"Writing missing {dataset.value} partitions under {settings.data_dir}"):
        federation = federation_for(dataset, how, settings)
    members, domain = list(federation.providers), DOMAINS[dataset]
    coordinator = governance_as(None)
    with console.status(f"Governance: the members' badges and FLAI, the {domain} SubDAO"):
        set_up_governance(coordinator, domain, members)
    console.print(f"The {domain} SubDAO ({coordinator.dao_address(domain)}) counts its members' "
                  f"votes by √FLAI and reputation; members: {', '.join(members)}", soft_wrap=True)

    # The modeler proposes the task; three hospitals vote for, one against; the timelock runs it.
    name = new_task_id(federation.name, ModelKind.LOGREG, 0)
    spec = JobSpec(dataset.value, ModelKind.LOGREG, rounds, how.providers, how.alpha)
    _, approval = submit_task(governance_as(MODELER), name, domain, spec, POOL)
    console.print(f"{MODELER} proposed task {name}, escrowing {POOL // 10**18} FLAI")
    pass_proposal(domain, approval, {member: Support.AGAINST if i == 3 else Support.FOR
                                     for i, member in enumerate(members)})
    console.print(proposals_table(coordinator, domain))

    # The sync starts the approved task's training (inline: this process has no worker), and
    # opens the validation vote once the model and its report are on chain.
    with console.status(f"Training {name}: {rounds} round(s) over {len(members)} providers, "
                        "each valued in MPC; then validation and fairness"):
        governance_sync(inline=True)
    print_history(name, verify_history(name))
    report = validation_report(coordinator.task(coordinator.task_id(name)))
    console.print(validation_table(report))

    # The members accept the model; the next sync settles it; a hospital claims its reward.
    validation = coordinator.stage_proposal(coordinator.task_id(name))
    pass_proposal(domain, validation.id, dict.fromkeys(members, Support.FOR))
    with console.status("Settling: the pool released, the reward split, one Merkle root, badges"):
        governance_sync(inline=True)
    console.print(tasks_table(coordinator))
    chain = coordinator.ledger
    console.print(settlement_table(chain, settlement_of(chain, last_settled(chain))))
    claim(members[0], None)
    compare_with_central(dataset, federation, ModelKind.LOGREG, FitConfig(), rounds, 0, report.metrics)

    # The model is on sale: a clinic buys FLAI on the Uniswap pool and pays for a private
    # prediction of three patients it holds; the hospitals' revenue follows their shares.
    with console.status(f"{CONSUMER} buys FLAI with ETH on the FLAI/WETH pool"):
        bought = buy_flai_for(CONSUMER)
    console.print(f"{CONSUMER} bought {flai_text(bought)} FLAI for {CONSUMER_ETH / 10**18:g} ETH "
                  "through the Uniswap V2 router")
    rows = settings.data_dir / "consumers" / CONSUMER / f"{dataset.value}-patients.csv"
    rows.parent.mkdir(parents=True, exist_ok=True)
    dataset.load().drop(columns=[dataset.schema.label]).sample(3, random_state=7).to_csv(rows, index=False)
    infer(model=name, rows=rows, backend=Backend.MPC, as_name=CONSUMER, max_price=None)
    market = Market(chain)
    console.print(f"revenue now claimable by {members[0]}: "
                  f"{flai_text(market.claimable(coordinator.task_id(name), provider_accounts(members[:1])[members[0]]))} FLAI")


def buy_flai_for(consumer: str) -> int:
    """Seed the FLAI/WETH pool from the treasury if it is empty; ``consumer`` then buys FLAI
    with ETH (sent it by the coordinator, this being a development chain)."""
    from contracts.market import Market
    from tasks.chain import ledger
    from tasks.settlement import funded_signer

    chain = ledger()
    market = Market(chain)
    if not market.pool_reserves().flai:
        chain.mint_tokens(chain.sender, POOL_FLAI)
        market.seed_pool(POOL_FLAI, POOL_ETH)
    buyer = Market(funded_signer(consumer, at_least=CONSUMER_ETH))
    return buyer.buy_flai(CONSUMER_ETH, buyer.amount_out(CONSUMER_ETH) * 99 // 100)


def set_up_governance(coordinator: Governance, domain: str, members: list[str]) -> None:
    """Badges and FLAI for the members, FLAI for the modeler's pool; the domain's SubDAO,
    created by a SuperDAO proposal the treasury's FLAI carries, if it has none yet."""
    from cli.dao import admit_member, pass_proposal
    from contracts import ChainContract, Support, VotingWeights

    for member in members:
        admit_member(member, GRANT)
    admit_member(MODELER, POOL, badge=False)
    if coordinator.sub_dao(domain) is None:
        # The treasury votes alone in the token-weighted SuperDAO: it holds a tenth of the
        # supply at least, over the quorum whatever was minted before on this chain.
        ledger = coordinator.ledger
        token = ledger.contract(ChainContract.TOKEN).functions
        ledger.mint_tokens(ledger.sender, GRANT + token.totalSupply().call() // 10)
        ledger.delegate(ledger.sender)
        proposal = coordinator.propose_sub_dao(domain, VotingWeights(0, 5_000, 5_000))
        pass_proposal("super", proposal, {None: Support.FOR})


def validation_table(report: ValidationReport) -> Table:
    """What the members vote on: the model's federated quality and its fairness per group."""
    fairness = report.fairness
    table = Table(title=f"Validation of {report.task}: accuracy {report.metrics.accuracy:.4f}, "
                        f"AUC {report.metrics.auc:.4f}; across {fairness.attribute}: "
                        f"demographic-parity gap {_rate(fairness.demographic_parity_difference)}, "
                        f"equal-opportunity gap {_rate(fairness.equal_opportunity_difference)}")
    for column in (fairness.attribute, "holdout rows", "predicted positive", "true-positive rate"):
        table.add_column(column, justify="right")
    for group, size in fairness.group_sizes.items():
        table.add_row(group, str(size), _rate(fairness.positive_rates[group]),
                      _rate(fairness.true_positive_rates[group]))
    return table


def _rate(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"
