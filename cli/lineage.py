"""``flai lineage TASK``: a task's rounds as the chain records them, every model verified,
and the owner's local mirror of them reconciled with the chain (``--repair`` acts on it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app

if TYPE_CHECKING:
    from contracts import Ledger, RecordResult
    from flai.lineage import ChainRound, Finding, LineageEntry, LineageMirror
    from tasks.lineage import VerifiedRound

console = Console()

EMBEDDED_HINT = (
    "The embedded chain (FLAI_CHAIN_URL unset) lives only in the process that trained. To keep "
    "lineage across processes, run `flai chain up` and export the FLAI_CHAIN_URL it prints "
    "before training.")


def short(value: str, head: int = 7, tail: int = 6) -> str:
    """``value`` with its middle elided, for table cells; the full value is printed below.

    >>> short("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq")
    'bafkrei…hc4yeq'
    """
    return value if len(value) <= head + tail + 1 else f"{value[:head]}…{value[-tail:]}"


def history_table(task: str, rounds: Sequence[VerifiedRound]) -> Table:
    table = Table(title=f"Lineage of {task}, verified against the chain")
    for column in ("round", "participants", "accuracy", "model CID", "tx", "verified"):
        table.add_column(column, justify="right" if column in ("round", "participants", "accuracy") else "left")
    for r in rounds:
        table.add_row(str(r.round_number), str(r.participants), f"{r.accuracy:.4f}",
                      short(r.model_cid), short(r.tx_hash), "✓" if r.verified else "✗")
    return table


def print_history(task: str, rounds: Sequence[VerifiedRound]) -> int:
    """Print the table, then each round's full CID and transaction (and problem); return the
    number of rounds that failed verification."""
    console.print(history_table(task, rounds))
    for r in rounds:
        console.print(f"round {r.round_number}: model {r.model_cid}  tx {r.tx_hash} (block {r.block_number})",
                      soft_wrap=True)
        if not r.verified:
            console.print(f"  [red]✗ {r.problem}[/]", soft_wrap=True)
    return sum(not r.verified for r in rounds)


@app.command("lineage")
def lineage(
    task: Annotated[str, typer.Argument(help="the task id the training job ran under")],
    repair: Annotated[bool, typer.Option(
        help="record again the mirrored rounds the chain lost, and update stale mirror rows")] = False,
) -> None:
    """Re-read TASK's rounds from the chain, fetch and decrypt every model, check its hashes;
    first compare the local mirror with the chain, which is the record.

    Exits non-zero when the chain holds no round of TASK, any round fails verification, or
    the mirror holds rounds the chain does not confirm (after repairing them, if asked).
    """
    from contracts import LedgerConnectionError, LedgerManifestError
    from tasks.lineage import ledger, verify_history

    try:
        chain = ledger()
        # The embedded chain is new in every process: the mirror describes chains now gone.
        findings = [] if chain.chain.embedded else _reconciled(chain, task)
        if findings and repair:
            _repair(chain, task, findings)
            findings = _reconciled(chain, task)
        print_findings(findings, suggest_repair=not repair)
        rounds = verify_history(task)
    except (LedgerConnectionError, LedgerManifestError) as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    if not rounds:
        console.print(f"[red]the chain holds no rounds of task {task!r}.[/]")
        if chain.chain.embedded:
            console.print(EMBEDDED_HINT, soft_wrap=True)
        raise typer.Exit(1)
    failed = print_history(task, rounds)
    if failed:
        console.print(f"[red]{failed} of {len(rounds)} round(s) failed verification[/]")
    else:
        console.print(f"[green]all {len(rounds)} round(s) verified ✓[/]")
    if findings:
        console.print(f"[red]{len(findings)} mirrored round(s) not confirmed by the chain (above)[/]")
    if failed or findings:
        raise typer.Exit(1)


def print_findings(findings: Sequence[Finding], suggest_repair: bool) -> None:
    """One line a mirrored round the chain does not confirm, then what ``--repair`` would do
    if it can do anything and ``suggest_repair``."""
    from flai.lineage import Discrepancy

    for f in findings:
        held = (f" (the chain's: tx {f.on_chain.tx_hash}, block {f.on_chain.block_number})"
                if f.on_chain else "")
        console.print(f"[red]mirror: round {f.entry.round + 1}, tx {f.entry.tx_hash} (block "
                      f"{f.entry.block_number}): {f.discrepancy.value}{held}[/]", soft_wrap=True)
    if suggest_repair and any(f.discrepancy is not Discrepancy.OTHER_CONTENT for f in findings):
        console.print("`flai lineage --repair` records the missing rounds again from the mirror "
                      "and points stale rows at the chain's transactions.", soft_wrap=True)


def _mirror() -> LineageMirror:
    from flai.lineage import LineageMirror
    from flai.settings import get_settings

    return LineageMirror.for_data_dir(get_settings().data_dir)


def _reconciled(chain: Ledger, task: str) -> list[Finding]:
    """The mirror's rounds of ``task`` on this chain and registry that the chain does not confirm."""
    from contracts import ChainContract
    from flai.lineage import reconcile

    here = (chain.chain.chain_id, chain.manifest.addresses[ChainContract.REGISTRY])
    mirrored = [e for e in _mirror().rounds(task) if (e.chain_id, e.registry) == here]
    return reconcile(mirrored, _chain_rounds(chain, task))


def _chain_rounds(chain: Ledger, task: str) -> dict[int, ChainRound]:
    from contracts import keccak_id
    from flai.lineage import ChainRound
    from tasks.lineage import round_transactions

    recorded = round_transactions(chain, task)
    rounds = {}
    for r in chain.rounds(keccak_id(task)):
        tx = recorded.get(r.round)
        rounds[r.round] = ChainRound(
            r.model_cid, r.model_sha256.hex(), r.participants_commitment.hex(),
            r.quality_report_hash.hex(), r.metrics.accuracy_ppm, r.metrics.loss_micro,
            r.metrics.participants, r.metrics.samples, tx.tx_hash if tx else None,
            tx.block_number if tx else None)
    return rounds


def _repair(chain: Ledger, task: str, findings: Sequence[Finding]) -> None:
    """Records the missing rounds again, in order, from their mirror rows; then points the
    rows of rounds recorded by another transaction at that one. Rounds with other content on
    chain stay as they are: lineage is never rewritten."""
    from contracts import LedgerRevertError
    from flai.lineage import Discrepancy

    for f in findings:
        if f.discrepancy is Discrepancy.MISSING:
            try:
                result = _record_again(chain, task, f.entry)
            except LedgerRevertError as error:  # an earlier round, or the task itself, is gone too
                console.print(f"[red]round {f.entry.round + 1} cannot be recorded again: {error}[/]",
                              soft_wrap=True)
                return
            console.print(f"recorded round {f.entry.round + 1} again: tx {result.tx_hash} "
                          f"(block {result.block_number})", soft_wrap=True)
    for f in _reconciled(chain, task):
        if f.discrepancy is Discrepancy.OTHER_TRANSACTION and f.on_chain.tx_hash is not None:
            _mirror().record(replace(f.entry, tx_hash=f.on_chain.tx_hash,
                                     block_number=f.on_chain.block_number))
            console.print(f"mirror: round {f.entry.round + 1} now names tx {f.on_chain.tx_hash}",
                          soft_wrap=True)


def _record_again(chain: Ledger, task: str, entry: LineageEntry) -> RecordResult:
    from contracts import RoundMetrics, keccak_id

    metrics = RoundMetrics(entry.accuracy_ppm, entry.loss_micro, len(entry.participants), entry.samples)
    return chain.record_round(keccak_id(task), entry.round, entry.model_cid, entry.model_sha256,
                              entry.participants_commitment, entry.quality_report_hash, metrics)
