"""Gas of a DAO decision: propose, vote, queue and execute, for the SuperDAO and a SubDAO.

On a fresh deployment on the embedded chain (py-evm, the same gas schedule as mainnet's
current fork), with the development governance settings:
  - SuperDAO (token-weighted): the proposal that creates the "healthcare" SubDAO. It carries
    FLAIGovernor's creation code (about 22 KB of calldata, see SubDAOFactory), and its
    execution deploys a Governor and a TimelockController;
  - SubDAO (quadratic + reputation, 50/50): the canonical proposal that approves a task.
Each figure is the receipt's gasUsed (including the 21,000 of every transaction); a vote is
the mean over the members' first votes (four badge holders, 100 FLAI each, reputation 3).
Prints the table and writes bench/out/governance_gas.md.

    python bench/governance_gas.py
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from web3.contract.contract import ContractEvent

from contracts import SUPER, ChainContract, Governance, Ledger, Support, VotingWeights, advance
from contracts.compiled import compiled
from flai.settings import get_settings

OUT = Path(__file__).resolve().parent / "out" / "governance_gas.md"
FLAI = 10**18
STEPS = ("propose", "castVote", "queue", "execute")


@dataclass(frozen=True)
class Decision:
    dao: str
    what: str
    gas: dict[str, float]  # step -> gas


def gas_of(ledger: Ledger, event: ContractEvent, proposal_id: int) -> list[int]:
    """The gasUsed of every transaction that emitted ``event`` for ``proposal_id``."""
    receipt = ledger.chain.web3.eth.get_transaction_receipt
    logs = event.get_logs(from_block=ledger.manifest.deployment_block)
    ours = [log for log in logs if log["args"]["proposalId"] == proposal_id]
    return [receipt(log["transactionHash"])["gasUsed"] for log in ours]


def decide(gov: Governance, dao: str, proposal_id: int, voters: list[str], what: str) -> Decision:
    """Votes the proposal through, queues and executes it; the gas of each step."""
    ledger = gov.ledger
    chain = ledger.chain
    proposal = gov.proposal(dao, proposal_id)
    advance(chain, blocks=max(proposal.snapshot + 1 - chain.web3.eth.block_number, 0))
    for voter in voters:
        gov.as_sender(voter).cast_vote(dao, proposal_id, Support.FOR)
    advance(chain, blocks=max(proposal.deadline + 1 - chain.web3.eth.block_number, 0))
    queued = gov.queue(dao, proposal_id)
    advance(chain, seconds=get_settings().governance_timelock_delay_s + 1)
    executed = gov.execute(dao, proposal_id)

    abi = compiled(ChainContract.SUPER_DAO).abi
    governor = chain.web3.eth.contract(address=gov.dao_address(dao), abi=abi)
    receipt = chain.web3.eth.get_transaction_receipt
    return Decision(dao, what, {
        "propose": gas_of(ledger, governor.events.ProposalCreated(), proposal_id)[0],
        "castVote": statistics.fmean(gas_of(ledger, governor.events.VoteCast(), proposal_id)),
        "queue": receipt(queued.tx_hash)["gasUsed"],
        "execute": receipt(executed.tx_hash)["gasUsed"],
    })


def measure(state_dir: Path) -> list[Decision]:
    ledger = Ledger.open(state_dir)
    gov = Governance(ledger)
    members = [ledger.chain.unlocked_account(i) for i in range(1, 5)]
    for member in members:
        ledger.mint_badge(member)
        ledger.mint_tokens(member, 100 * FLAI)
        ledger.as_sender(member).delegate(member)  # ERC20Votes counts delegated balances only
        ledger.set_reputation(member, 3)
    ledger.mint_tokens(ledger.sender, 1_000 * FLAI)
    ledger.delegate(ledger.sender)
    modeler = gov.as_sender(ledger.chain.unlocked_account(5))
    ledger.mint_tokens(modeler.ledger.sender, 500 * FLAI)

    created = gov.propose_sub_dao("healthcare", VotingWeights(0, 5_000, 5_000))
    super_dao = decide(gov, SUPER, created, [ledger.sender], "create a SubDAO")
    _, approval = modeler.propose_task("heart-v1", "healthcare", "bafyspec", "heart", 500 * FLAI)
    sub_dao = decide(gov, "healthcare", approval, members, "approve a task")
    return [super_dao, sub_dao]


def table(results: list[Decision]) -> Table:
    shown = Table(title="Gas of one DAO decision (embedded py-evm chain)")
    shown.add_column("DAO")
    shown.add_column("proposal")
    for step in STEPS:
        shown.add_column(step, justify="right")
    for r in results:
        shown.add_row(r.dao, r.what, *(f"{r.gas[step]:,.0f}" for step in STEPS))
    return shown


def markdown(results: list[Decision]) -> str:
    lines = [
        "# Gas of one DAO decision",
        "",
        "Embedded py-evm chain; receipts' gasUsed (with the 21,000 of each transaction). "
        "castVote: mean of the voters' first votes. Written by `bench/governance_gas.py`.",
        "",
        f"| DAO | proposal | {' | '.join(STEPS)} |",
        "|---|---|" + "---:|" * len(STEPS),
    ]
    for r in results:
        lines.append(f"| {r.dao} | {r.what} | " + " | ".join(f"{r.gas[s]:,.0f}" for s in STEPS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    console = Console(width=140)
    with tempfile.TemporaryDirectory() as state:
        results = measure(Path(state))
    console.print(table(results))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(markdown(results))
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
