"""Gas of paid inference and liquidity: a request's escrow, its release (the fee and the
contributors' revenue), a refund, a contributor's claim, setting a model's shares (once per
model: the only step whose cost grows with the contributors) and a swap through the Uniswap V2
router, against one plain FLAI transfer measured in the same run.

On a fresh deployment on the embedded chain (py-evm); each figure is the receipt's gasUsed
(including the 21,000 of every transaction). Prints the table and writes
bench/out/market_gas.md.

    python bench/market_gas.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table
from web3.types import TxReceipt

from contracts import ChainContract, Ledger, Market, keccak_id
from contracts.market import ONE

OUT = Path(__file__).resolve().parent / "out" / "market_gas.md"
FLAI = 10**18
CONTRIBUTORS = (4, 64)


def last_receipt(ledger: Ledger) -> TxReceipt:
    web3 = ledger.chain.web3
    block = web3.eth.get_block("latest", full_transactions=False)
    return web3.eth.get_transaction_receipt(block["transactions"][-1])


def measure(state_dir: Path) -> dict[str, int]:
    ledger = Ledger.open(state_dir)
    market, web3 = Market(ledger), ledger.chain.web3
    consumer = ledger.chain.unlocked_account(1)
    ledger.mint_tokens(consumer, 1_000 * FLAI)
    gas: dict[str, int] = {}
    for count in CONTRIBUTORS:
        model = keccak_id(f"model-{count}")
        market.set_tiers(model, [1, 100], [FLAI, 20 * FLAI])
        market.set_dynamics(model, 10, 3600, ONE // 2, 4 * ONE)
        market.set_row_budget(model, 1_000)
        accounts = ([ledger.chain.unlocked_account(i) for i in range(2, 2 + count)]
                    if count <= 8 else [web3.eth.account.create().address for _ in range(count)])
        market.set_shares(model, accounts, [i + 1 for i in range(count)])
        gas[f"setShares, {count} contributors (once per model)"] = last_receipt(ledger)["gasUsed"]
    model = keccak_id(f"model-{CONTRIBUTORS[0]}")
    buyer = Market(ledger.as_sender(consumer))
    deadline = web3.eth.get_block("latest")["timestamp"] + 900
    for key in ("first", "second"):
        request = buyer.request(model, 3, 40 * FLAI, deadline, key=keccak_id(key))
        gas[f"request ({key} of the window)"] = last_receipt(ledger)["gasUsed"]
    market.release(request)
    gas["release (fee + revenue)"] = last_receipt(ledger)["gasUsed"]
    Market(ledger.as_sender(ledger.chain.unlocked_account(2))).claim(model)
    gas["claim (a contributor's revenue)"] = last_receipt(ledger)["gasUsed"]
    refunded = buyer.request(model, 3, 40 * FLAI, deadline, key=keccak_id("third"))
    market.refund(refunded)
    gas["refund"] = last_receipt(ledger)["gasUsed"]
    ledger.mint_tokens(ledger.sender, 10_000 * FLAI)
    market.seed_pool(10_000 * FLAI, 10 * ONE)
    market.buy_flai(ONE // 10, 0)
    gas["swap ETH -> FLAI (router)"] = last_receipt(ledger)["gasUsed"]
    token_transfer(ledger, consumer)
    gas["baseline: one FLAI transfer"] = last_receipt(ledger)["gasUsed"]
    return gas


def token_transfer(ledger: Ledger, sender: str) -> None:
    token = ledger.contract(ChainContract.TOKEN)
    ledger.as_sender(sender).send(ChainContract.TOKEN, token.functions.transfer(ledger.sender, FLAI))


def main() -> None:
    with tempfile.TemporaryDirectory() as state_dir:
        gas = measure(Path(state_dir))
    table = Table(title="Gas of paid inference and liquidity (embedded py-evm chain)")
    table.add_column("step")
    table.add_column("gas", justify="right")
    for step, used in gas.items():
        table.add_row(step, f"{used:,}")
    Console().print(table)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("# Gas of paid inference and liquidity\n\nEmbedded py-evm chain; receipts' "
                   "gasUsed. Written by `bench/market_gas.py`.\n\n| step | gas |\n|---|---:|\n"
                   + "".join(f"| {step} | {used:,} |\n" for step, used in gas.items()))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
