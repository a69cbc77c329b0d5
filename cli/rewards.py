"""``flai rewards settle|show|claim`` and ``flai stake deposit|unbond|withdraw|show``.

Providers are named as in their federation; each is paid at, and stakes from, the account the
data directory derives for it (``flai.rewards.contributions``). Amounts are printed and typed
in FLAI (18 decimals). Every failure the operator can cause or fix is one red line and exit
code 1; a malformed argument is exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app

if TYPE_CHECKING:
    from contracts import Ledger
    from tasks.settlement import Settlement

rewards_app = typer.Typer(help="Reward settlement: pay an epoch through one Merkle root, show it, claim.",
                          no_args_is_help=True)
stake_app = typer.Typer(help="Provider staking: bond FLAI to be selected for paid tasks.",
                        no_args_is_help=True)
app.add_typer(rewards_app, name="rewards")
app.add_typer(stake_app, name="stake")
console = Console()

WEI = 10**18

EpochOption = Annotated[int | None, typer.Option(min=1, help="default: the last settled epoch")]


def flai_amount(text: str) -> int:
    """``text`` FLAI in base units.

    >>> flai_amount("1.5"), flai_amount("0.000000000000000001")
    (1500000000000000000, 1)
    """
    try:
        value = Decimal(text) * WEI
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number of FLAI") from None
    if value <= 0 or value != value.to_integral_value():
        raise typer.BadParameter(f"{text!r}: a positive amount with at most 18 decimals")
    return int(value)


def flai_text(amount: int) -> str:
    """Base units as FLAI, without trailing zeros.

    >>> flai_text(1500000000000000000), flai_text(0)
    ('1.5', '0')
    """
    text = f"{Decimal(amount) / WEI:.18f}".rstrip("0").rstrip(".")
    return text or "0"


def flai_cell(amount: int) -> str:
    """Base units as FLAI to the micro-FLAI, for table cells (the exact amounts are in the
    settlement's file and on chain).

    >>> flai_cell(1500000000000000000), flai_cell(1)
    ('1.500000', '0.000000')
    """
    return f"{Decimal(amount) / WEI:.6f}"


def moment(timestamp: int) -> str:
    """A block timestamp, readable.

    >>> moment(86400)
    '1970-01-02 00:00 UTC'
    """
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M} UTC"


@contextmanager
def failures() -> Iterator[None]:
    """The errors an operator meets, as one red line and exit code 1."""
    from contracts import LedgerError
    from flai.storage import StorageError
    from tasks.settlement import SettlementError

    try:
        yield
    except (LedgerError, StorageError, SettlementError) as error:
        console.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None


def _chain() -> Ledger:
    from tasks.chain import ledger

    return ledger()


def _settled(chain: Ledger, epoch: int | None) -> Settlement:
    """Epoch ``epoch``'s recorded settlement (default: the last one); exit 1 if there is none."""
    from cli.lineage import EMBEDDED_HINT
    from tasks.settlement import last_settled, settlement_of

    last = last_settled(chain)
    settlement = settlement_of(chain, epoch or last) if (epoch or last) else None
    if settlement is None:
        console.print(f"[red]{f'epoch {epoch} is' if epoch else 'no epoch is'} not settled "
                      f"(last settled: {last or 'none'}).[/]", soft_wrap=True)
        if chain.chain.embedded:
            console.print(EMBEDDED_HINT, soft_wrap=True)
        raise typer.Exit(1)
    return settlement


def settlement_table(chain: Ledger, settlement: Settlement) -> Table:
    """One row per provider: rounds (and those it was paid for), value, share, amount, claimed."""
    leaves = {r.provider: i for i, r in enumerate(settlement.paid)}
    table = Table(title=f"Rewards of epoch {settlement.epoch}: "
                        f"{flai_text(settlement.split.total)} FLAI for {len(settlement.tasks)} "
                        f"accepted task(s), {len(settlement.records)} round(s)")
    table.add_column("provider", no_wrap=True)
    for column in ("rounds", "paid", "value", "share", "FLAI", "claimed"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in settlement.split.rewards:
        index = leaves.get(r.provider)
        claimed = "—" if index is None else ("yes" if chain.is_claimed(settlement.epoch, index) else "no")
        table.add_row(r.provider, str(r.rounds), str(r.paid_rounds),
                      "—" if r.value is None else f"{r.value:.4f}", f"{r.share:.2%}",
                      flai_cell(r.amount), claimed)
    return table


@rewards_app.command("settle")
def settle(epoch: Annotated[int | None, typer.Option(min=1, help="default: the next epoch")] = None) -> None:
    """Settle the rounds recorded since the last epoch (or epoch N again: it posts nothing new)."""
    from flows.reward_settlement import reward_settlement

    with failures():
        settlement = reward_settlement(epoch)
        if settlement is None:
            console.print("no round was recorded since the last settled epoch: nothing to settle")
            return
        chain = _chain()
        console.print(settlement_table(chain, settlement))
        tree = settlement.tree()
        console.print(f"root {'0x' + tree.root.hex() if tree else 'none (nothing paid)'}; proofs in "
                      f"rewards/epoch-{settlement.epoch}.json under the data directory", soft_wrap=True)


@rewards_app.command("show")
def show(epoch: EpochOption = None) -> None:
    """Per provider of an epoch: rounds, value, share, amount and whether it was claimed."""
    with failures():
        chain = _chain()
        console.print(settlement_table(chain, _settled(chain, epoch)))


@rewards_app.command("claim")
def claim(
    provider: Annotated[str, typer.Argument(help="the provider's name")],
    epoch: Annotated[int | None, typer.Option(min=1, help="default: every unclaimed epoch")] = None,
) -> None:
    """Pay PROVIDER's reward of an epoch (or of every epoch not yet claimed) to its account."""
    from tasks.settlement import last_settled, settlement_of

    with failures():
        chain = _chain()
        epochs = [_settled(chain, epoch).epoch] if epoch else range(1, last_settled(chain) + 1)
        paid, claimed_before = 0, []
        for number in epochs:
            settlement = settlement_of(chain, number)
            leaves = {r.provider: (i, r) for i, r in enumerate(settlement.paid)}
            if provider not in leaves:
                continue
            index, reward = leaves[provider]
            if chain.is_claimed(number, index):
                claimed_before.append(number)
                continue
            result = chain.claim(number, index, reward.account, reward.amount,
                                 settlement.tree().proof(index))
            paid += reward.amount
            console.print(f"epoch {number}: paid {flai_text(reward.amount)} FLAI to {provider} "
                          f"({reward.account}) in tx {result.tx_hash}", soft_wrap=True)
        if not paid:
            where = f"epoch {epoch}" if epoch else "any settled epoch"
            before = (f" (claimed already: epoch {', '.join(map(str, claimed_before))})"
                      if claimed_before else "")
            console.print(f"[red]{provider} has nothing to claim in {where}{before}[/]")
            raise typer.Exit(1)


# -- staking --------------------------------------------------------------------------------


def _as_provider(provider: str) -> Ledger:
    from tasks.settlement import funded_signer

    return funded_signer(provider)


@stake_app.command("deposit")
def deposit(provider: Annotated[str, typer.Argument(help="the provider's name")],
            amount: Annotated[str, typer.Argument(help="FLAI to bond, e.g. 10 or 2.5")]) -> None:
    """Bond AMOUNT of PROVIDER's FLAI (its claimed rewards)."""
    wei = flai_amount(amount)
    with failures():
        signer = _as_provider(provider)
        balance = signer.token_balance(signer.sender)
        if balance < wei:
            console.print(f"[red]{provider} holds {flai_text(balance)} FLAI, less than {amount}[/]")
            raise typer.Exit(1)
        signer.stake(wei)
        console.print(f"{provider} bonded {amount} FLAI; its stake is now "
                      f"{flai_text(signer.stake_of(signer.sender))} FLAI")


@stake_app.command("unbond")
def unbond(provider: Annotated[str, typer.Argument(help="the provider's name")],
           amount: Annotated[str, typer.Argument(help="FLAI to unbond")]) -> None:
    """Start unbonding AMOUNT of PROVIDER's stake; it can be withdrawn after the delay."""
    wei = flai_amount(amount)
    with failures():
        signer = _as_provider(provider)
        signer.request_unbond(wei)
        pending, at = signer.unbonding_of(signer.sender)
        console.print(f"{provider}: {flai_text(pending)} FLAI unbonding, withdrawable from {moment(at)}")


@stake_app.command("withdraw")
def withdraw(provider: Annotated[str, typer.Argument(help="the provider's name")]) -> None:
    """Pay PROVIDER its unbonded stake once the delay has passed."""
    from contracts import LedgerTooEarlyError

    with failures():
        signer = _as_provider(provider)
        try:
            signer.withdraw_stake()
        except LedgerTooEarlyError as error:
            console.print(f"[red]{provider}'s stake is still unbonding: withdrawable from "
                          f"{moment(error.arguments['withdrawableAt'])}[/]")
            raise typer.Exit(1) from None
        console.print(f"{provider} withdrew its unbonded stake; it holds "
                      f"{flai_text(signer.token_balance(signer.sender))} FLAI")


@stake_app.command("show")
def stake_show(providers: Annotated[list[str], typer.Argument(help="provider names")]) -> None:
    """Each provider's account, FLAI balance, bonded stake and unbonding stake."""
    from tasks.settlement import provider_accounts

    with failures():
        # Read as the operator: the embedded chain refuses even a call from an account without gas.
        chain = _chain()
        accounts = provider_accounts(providers)
        table = Table(title="Provider stakes (FLAI)")
        table.add_column("provider", no_wrap=True)
        for column in ("balance", "bonded", "unbonding", "withdrawable from"):
            table.add_column(column, justify="right", no_wrap=True)
        for provider, account in accounts.items():
            pending, at = chain.unbonding_of(account)
            table.add_row(provider, flai_cell(chain.token_balance(account)),
                          flai_cell(chain.stake_of(account)), flai_cell(pending),
                          moment(at) if pending else "—")
        console.print(table)
        for provider, account in accounts.items():
            console.print(f"{provider}: {account}")
