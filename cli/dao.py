"""``flai dao``: the DAOs' life from a shell: members, SubDAOs, task proposals, votes, the
timelock's queue and execution, and a table of where every proposal stands.

Accounts are named (``--as alice``): each name's key derives from the data directory, as the
providers' do (``flai.rewards.contributions``), and the coordinator (the chain's configured
account) sends it gas money on its first transaction. A proposal is named by its id or any
unambiguous prefix of it. ``--dao`` is ``super`` (the SuperDAO) or a domain (its SubDAO).
Failures the user can fix are one red line and exit code 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
from cli.rewards import flai_amount, flai_text

if TYPE_CHECKING:
    from contracts import Governance, Proposal, Support
    from flai.learning.config import JobSpec

dao_app = typer.Typer(help="Governance: SubDAOs, task proposals, votes, queue, execute, status.",
                      no_args_is_help=True)
app.add_typer(dao_app, name="dao")
console = Console()

DaoOption = Annotated[str, typer.Option("--dao", help="'super' or a domain, e.g. healthcare")]
AsOption = Annotated[str | None, typer.Option("--as", help="the member's name; default: the coordinator")]
WEIGHTS = {"token": (10_000, 0, 0), "quadratic": (0, 10_000, 0), "reputation": (0, 0, 10_000),
           "quadratic+reputation": (0, 5_000, 5_000)}


@contextmanager
def _failures() -> Iterator[None]:
    from contracts import LedgerError
    from flai.learning.config import JobSpecError
    from flai.storage import StorageError

    try:
        yield
    except (LedgerError, StorageError, JobSpecError, LookupError) as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None


def governance_as(name: str | None) -> Governance:
    """The DAOs seen from the coordinator (None) or from member ``name``'s account."""
    from contracts import Governance
    from tasks.chain import ledger
    from tasks.settlement import funded_signer

    return Governance(ledger() if name is None else funded_signer(name))


def find_proposal(dao: Governance, where: str, prefix: str) -> Proposal:
    """The proposal of ``where`` whose id is ``prefix``, or else starts with it (which reads
    the DAO's proposal history); LookupError unless exactly one."""
    from contracts import LedgerNotFoundError

    if prefix.isdigit():
        try:
            return dao.proposal(where, int(prefix))
        except LedgerNotFoundError:
            pass
    found = [p for p in dao.proposals(where) if str(p.id).startswith(prefix)]
    if len(found) != 1:
        raise LookupError(f"{len(found) or 'no'} proposal(s) of the {where} DAO start with {prefix}")
    return found[0]


@dao_app.command("join")
def join(name: Annotated[str, typer.Argument(help="the member's name")],
         flai: Annotated[str, typer.Option(help="FLAI the treasury grants it")] = "100",
         badge: Annotated[bool, typer.Option(help="a contributor's soul-bound badge; "
                                             "--no-badge for a modeler")] = True) -> None:
    """Give NAME FLAI to vote (or escrow) with and, for a contributor, its soul-bound badge
    (once); run by the coordinator, whose treasury grants it."""
    with _failures():
        address = admit_member(name, flai_amount(flai), badge=badge)
    console.print(f"{name}: {address}, {flai} FLAI granted" + (", badge held" if badge else ""),
                  soft_wrap=True)


def admit_member(name: str, amount: int, *, badge: bool = True) -> str:
    """Grant ``name`` ``amount`` FLAI from the treasury and, with ``badge``, its soul-bound
    badge (once); the member delegates its votes to itself (ERC20Votes counts delegated
    balances only). Returns its account."""
    from tasks.chain import ledger
    from tasks.settlement import funded_signer

    chain, member = ledger(), funded_signer(name)
    account = member.sender
    if badge and chain.badge_of(account) is None:
        chain.mint_badge(account)
    chain.mint_tokens(account, amount)
    member.delegate(account)
    return account


def hold_vote(dao: str, proposal_id: int, votes: Mapping[str | None, Support]) -> None:
    """Cast ``votes`` (member name -> support; None: the coordinator) on a proposal, moving a
    development chain past its voting delay and, after the votes, its voting period, as
    OpenZeppelin's Governor tests do."""
    from contracts import advance

    chain = governance_as(None).ledger.chain
    proposal = governance_as(None).proposal(dao, proposal_id)
    advance(chain, blocks=max(proposal.snapshot + 1 - chain.web3.eth.block_number, 0))
    for name, support in votes.items():
        governance_as(name).cast_vote(dao, proposal_id, support)
    advance(chain, blocks=max(proposal.deadline + 1 - chain.web3.eth.block_number, 0))


def pass_proposal(dao: str, proposal_id: int, votes: Mapping[str | None, Support]) -> None:
    """:func:`hold_vote`, then queue the proposal, wait out the timelock delay (on a
    development chain) and execute it."""
    from contracts import advance

    hold_vote(dao, proposal_id, votes)
    coordinator = governance_as(None)
    chain = coordinator.ledger.chain
    coordinator.queue(dao, proposal_id)
    advance(chain, seconds=coordinator.timelock_delay(dao) + 1)
    coordinator.execute(dao, proposal_id)


@dao_app.command("create-subdao")
def create_subdao(domain: Annotated[str, typer.Argument(help="e.g. healthcare, finance")],
                  weights: Annotated[str, typer.Option(help=f"one of {', '.join(WEIGHTS)}")] = "quadratic+reputation",
                  as_name: AsOption = None) -> None:
    """Propose to the SuperDAO a SubDAO for DOMAIN with its own timelock and voting weights."""
    from contracts import VotingWeights

    if weights not in WEIGHTS:
        raise typer.BadParameter(f"{weights!r}: one of {', '.join(WEIGHTS)}")
    with _failures():
        proposal = governance_as(as_name).propose_sub_dao(domain, VotingWeights(*WEIGHTS[weights]))
    console.print(f"SuperDAO proposal {proposal}: create the {domain} SubDAO ({weights})")


@dao_app.command("propose-task")
def propose_task(
    name: Annotated[str, typer.Argument(help="the task's name, unique on chain")],
    domain: Annotated[str, typer.Option(help="the SubDAO that approves it")] = "healthcare",
    dataset: Annotated[str, typer.Option()] = "heart",
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    model: Annotated[str, typer.Option()] = "logreg",
    providers: Annotated[int | None, typer.Option(help="census: Dirichlet providers")] = None,
    pool: Annotated[str, typer.Option(help="FLAI escrowed for the contributors")] = "1000",
    as_name: AsOption = "modeler",
) -> None:
    """Propose a training task: its job document to the content store, the pool escrowed, and
    the approval proposal opened at the domain's SubDAO."""
    from flai.learning.config import JobSpec, ModelKind

    spec = JobSpec(dataset, ModelKind(model), rounds, providers)
    with _failures():
        task_id, proposal = submit_task(governance_as(as_name), name, domain, spec, flai_amount(pool))
    console.print(f"task {name} ({task_id.hex()}) proposed to the {domain} DAO: proposal {proposal}",
                  soft_wrap=True)


def submit_task(dao: Governance, name: str, domain: str, spec: JobSpec, pool: int) -> tuple[bytes, int]:
    """Store the job document, escrow ``pool`` and open the approval proposal."""
    from tasks.publish import content_store

    store = content_store()
    cid = store.put(spec.to_json())
    store.pin(cid)
    return dao.propose_task(name, domain, cid, spec.dataset, pool)


@dao_app.command("vote")
def vote(proposal: Annotated[str, typer.Argument(help="the proposal's id or a prefix")],
         support: Annotated[str, typer.Option(help="for, against or abstain")] = "for",
         dao: DaoOption = "healthcare", as_name: AsOption = None,
         reason: Annotated[str, typer.Option()] = "") -> None:
    """Vote on PROPOSAL with the member's weight at its snapshot."""
    from contracts import Support

    try:
        choice = Support[support.upper()]
    except KeyError:
        raise typer.BadParameter(f"{support!r}: for, against or abstain") from None
    with _failures():
        governance = governance_as(as_name)
        found = find_proposal(governance, dao, proposal)
        weight = governance.cast_vote(dao, found.id, choice, reason)
    console.print(f"{as_name or 'coordinator'} voted {support} on {found.id} with {flai_text(weight)} votes")


@dao_app.command("queue")
def queue(proposal: Annotated[str, typer.Argument()], dao: DaoOption = "healthcare") -> None:
    """Queue a succeeded PROPOSAL in its DAO's timelock."""
    _through_timelock("queue", proposal, dao)


@dao_app.command("execute")
def execute(proposal: Annotated[str, typer.Argument()], dao: DaoOption = "healthcare") -> None:
    """Execute a queued PROPOSAL once its timelock delay has passed."""
    _through_timelock("execute", proposal, dao)


def _through_timelock(step: str, proposal: str, dao: str) -> None:
    """``Governance.queue`` or ``Governance.execute``, sent by the coordinator (anyone may)."""
    with _failures():
        governance = governance_as(None)
        found = find_proposal(governance, dao, proposal)
        getattr(governance, step)(dao, found.id)
    console.print(f"{step}d {found.id}")  # queued, executed


@dao_app.command("status")
def status(dao: DaoOption = "healthcare") -> None:
    """A table of the DAO's proposals: state, votes for/against/abstain, quorum, deadline."""
    with _failures():
        governance = governance_as(None)
        console.print(proposals_table(governance, dao))
        console.print(tasks_table(governance))
        for t in governance.tasks():
            if t.model_cid:
                console.print(f"{t.name}: model {t.model_cid}  report {t.report_cid}", soft_wrap=True)


def proposals_table(governance: Governance, dao: str) -> Table:
    """Votes are in vote units (1 FLAI-equivalent each), to one decimal."""
    head = governance.ledger.chain.web3.eth.block_number
    table = Table(title=f"Proposals of the {dao} DAO (now block {head})")
    table.add_column("id", no_wrap=True)
    table.add_column("description")
    for column in ("state", "for", "against", "abstain", "quorum", "ends at block"):
        table.add_column(column, justify="right", no_wrap=True)
    for p in governance.proposals(dao):
        table.add_row(str(p.id)[:8], p.description, p.state.name.lower(), _votes(p.for_votes),
                      _votes(p.against_votes), _votes(p.abstain_votes), _votes(p.quorum),
                      str(p.deadline))
    return table


def _votes(amount: int) -> str:
    return f"{amount / 10**18:.1f}"


def tasks_table(governance: Governance) -> Table:
    table = Table(title="Governed tasks")
    for column in ("task", "domain", "state", "pool FLAI"):
        table.add_column(column, justify="right" if column == "pool FLAI" else "left")
    for t in governance.tasks():
        table.add_row(t.name, t.domain, t.state.name.lower(), flai_text(t.pool))
    return table


@dao_app.command("advance")
def advance(blocks: Annotated[int, typer.Option(min=0)] = 0,
            seconds: Annotated[int, typer.Option(min=0)] = 0) -> None:
    """Mine BLOCKS empty blocks and move the clock SECONDS ahead (development chains only)."""
    from contracts import advance as advance_chain
    from tasks.chain import ledger

    with _failures():
        advance_chain(ledger().chain, blocks=blocks, seconds=seconds)
    console.print(f"advanced {blocks} block(s) and {seconds} s")


@dao_app.command("sync")
def sync(inline: Annotated[bool, typer.Option(help="train and settle in this process")] = False) -> None:
    """Run the governance sync once: start approved tasks, open validations, close defeated
    proposals, settle accepted models."""
    from flows.governance_sync import governance_sync

    with _failures():
        actions = governance_sync(inline=inline)
    for name, action in actions.items():
        console.print(f"{name}: {action}", soft_wrap=True)
    if not actions:
        console.print("nothing to do")
