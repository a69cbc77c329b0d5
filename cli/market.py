"""``flai market prices|seed|buy``: the inference market's prices and FLAI's Uniswap V2 pool.

Models are named by their training task (``--model TASK``, the task id is ``keccak_id(TASK)``);
amounts are printed and typed in FLAI and ETH (both 18 decimals). The market and the pool's
contracts are part of the stack's deployment (``<data_dir>/chain``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import app
from cli.rewards import failures, flai_amount, flai_cell, flai_text

if TYPE_CHECKING:
    from contracts.market import Market, ModelPrices

market_app = typer.Typer(help="Inference market: prices per model; the FLAI/ETH pool: seed it, buy FLAI.",
                         no_args_is_help=True)
app.add_typer(market_app, name="market")
console = Console()

SLIPPAGE = Decimal("0.005")  # what `buy` accepts below the router's quote by default


def _market() -> Market:
    from contracts.market import Market
    from tasks.chain import ledger

    return Market(ledger())


def _named_market(name: str) -> Market:
    from contracts.market import Market
    from tasks.settlement import funded_signer

    return Market(funded_signer(name))


def eth_amount(text: str) -> int:
    """``text`` ETH in wei.

    >>> eth_amount("0.5"), eth_amount("20")
    (500000000000000000, 20000000000000000000)
    """
    try:
        value = Decimal(text) * 10**18
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number of ETH") from None
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        raise typer.BadParameter(f"{text!r}: a positive amount of ETH with at most 18 decimals")
    return int(value)


def multiplier_text(multiplier: int) -> str:
    """A multiplier (1e18 = 1x), readable.

    >>> multiplier_text(1125 * 10**15), multiplier_text(10**18)
    ('1.1250x', '1.0000x')
    """
    return f"{Decimal(multiplier) / 10**18:.4f}x"


def prices_table(rows: list[tuple[str, ModelPrices]]) -> Table:
    """One row per tier: its batches, tier price, the multiplier now and the price a request
    pays now; per model, the requests in the current demand window against the target, and
    the rows one consumer may have predicted (its row budget)."""
    table = Table(title="Inference prices (FLAI per request)")
    table.add_column("model", no_wrap=True)
    for column in ("batch", "tier price", "multiplier", "price now"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("requests / target", no_wrap=True)
    for name, prices in rows:
        dynamics = prices.dynamics
        demand = f"{prices.used} / {dynamics.target} per {dynamics.window_s} s" if dynamics else "fixed price"
        low = 1
        for tier in prices.tiers:
            table.add_row(name, f"{low}-{tier.max_batch}", flai_cell(tier.price),
                          multiplier_text(prices.multiplier), flai_cell(prices.price_now(tier)), demand)
            name, demand, low = "", "", tier.max_batch + 1
    table.caption = "rows one consumer may have predicted: " + "; ".join(
        f"{name} {prices.row_budget:,}" if prices.row_budget else f"{name} none (not sold)"
        for name, prices in rows)
    return table


@market_app.command("prices")
def prices(
    model: Annotated[str | None, typer.Option(help="a training task's name; default: every model")] = None,
) -> None:
    """Each model's tiers and the price a request pays now (tier price x demand multiplier)."""
    from contracts import keccak_id

    with failures():
        market = _market()
        if model is not None:
            rows = [(model, market.prices(keccak_id(model)))]
        else:
            rows = [(f"0x{m.hex()[:8]}…", market.prices(m)) for m in market.priced_models()]
        if not any(p.tiers for _, p in rows):
            console.print(f"[red]{f'model {model} has no prices' if model else 'no model has prices'} yet[/]")
            raise typer.Exit(1)
        console.print(prices_table(rows))


@market_app.command("seed")
def seed(flai: Annotated[str, typer.Option(help="FLAI to put in, e.g. 50000")],
         eth: Annotated[str, typer.Option(help="ETH to put in, e.g. 20")]) -> None:
    """Seed the FLAI/WETH pool with the operator's FLAI and ETH (once: a seeded pool is left as it is)."""
    flai_wei, eth_wei = flai_amount(flai), eth_amount(eth)
    with failures():
        market = _market()
        before = market.pool_reserves()
        reserves = market.seed_pool(flai_wei, eth_wei)
        state = "was seeded already" if before.flai or before.eth else "seeded"
        console.print(f"pool {state}: {flai_text(reserves.flai)} FLAI / {flai_text(reserves.eth)} ETH "
                      f"at {market.pair_address()}", soft_wrap=True)


@market_app.command("buy")
def buy(
    eth: Annotated[str, typer.Option(help="ETH to spend, e.g. 0.5")],
    min_flai: Annotated[str | None, typer.Option(help=f"least FLAI to accept; default: quote - {SLIPPAGE:.1%}")] = None,
    as_name: Annotated[str | None, typer.Option("--as", help="a named account (a consumer) "
                                                "buying with its own ETH; default: the coordinator")] = None,
) -> None:
    """Buy FLAI with ETH through the Uniswap V2 router and print the amount bought."""
    eth_wei = eth_amount(eth)
    with failures():
        market = _market() if as_name is None else _named_market(as_name)
        held_eth = market.ledger.chain.web3.eth.get_balance(market.sender)
        if held_eth < eth_wei:
            console.print(f"[red]{as_name or 'the coordinator'} holds {flai_text(held_eth)} ETH, "
                          f"less than {eth}[/]", soft_wrap=True)
            raise typer.Exit(1)
        if not market.pool_reserves().flai:
            console.print("[red]the FLAI/WETH pool is empty: `flai market seed` first[/]")
            raise typer.Exit(1)
        quoted = market.amount_out(eth_wei)
        min_out = flai_amount(min_flai) if min_flai else int(quoted * (1 - SLIPPAGE))
        bought = market.buy_flai(eth_wei, min_out)
        held = market.ledger.token_balance(market.sender)
        console.print(f"bought {flai_text(bought)} FLAI for {eth} ETH (quoted {flai_text(quoted)}); "
                      f"{market.sender} holds {flai_text(held)} FLAI", soft_wrap=True)
