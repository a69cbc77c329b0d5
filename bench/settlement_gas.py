"""Gas to settle an epoch through one Merkle root, against paying every provider its own transfer.

For each number of providers, on a fresh deployment on the embedded chain (py-evm, the same
gas schedule as mainnet's current fork) and in the same run:
  - post:      RewardDistributor.postEpochRoot of the epoch's tree (flai.rewards.epoch_tree);
  - claims:    RewardDistributor.claim of every leaf (submitted by the settler's account: a
               claim costs the same whoever sends it);
  - transfers: one FLAIToken.transfer per provider from a funded account, the payment a
               settlement without a tree would make.
Every recipient starts with no FLAI in both cases, so each payment creates its balance.
Prints the gas (receipts' gasUsed, including the 21,000 of every transaction) and the ratios;
writes bench/out/settlement_gas.json.

    python bench/settlement_gas.py [--providers 4 16 64 256]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_utils import keccak, to_checksum_address
from rich.console import Console
from rich.table import Table

from contracts import ChainContract, Ledger
from flai.rewards import epoch_tree

OUT = Path(__file__).resolve().parent / "out" / "settlement_gas.json"
CLAIM_GOAL = 80_000


@dataclass(frozen=True)
class Settlement:
    providers: int
    post: int
    claims: list[int]
    transfers: list[int]

    @property
    def claim_median(self) -> float:
        return statistics.median(self.claims)

    @property
    def claim_mean(self) -> float:
        return statistics.fmean(self.claims)

    @property
    def settled(self) -> int:
        """Everything the tree costs: the post and every claim."""
        return self.post + sum(self.claims)


def accounts(count: int, label: str) -> list[str]:
    """``count`` fresh addresses that hold nothing yet."""
    return [to_checksum_address(keccak(text=f"{label} {i}")[-20:]) for i in range(count)]


def measure(providers: int, state_dir: Path) -> Settlement:
    ledger = Ledger.open(state_dir)
    receipt = ledger.chain.web3.eth.get_transaction_receipt
    gas = lambda result: receipt(result.tx_hash)["gasUsed"]  # noqa: E731
    claimants = accounts(providers, "claimant")
    tree = epoch_tree(1, [(account, 10**18 + i) for i, account in enumerate(claimants)])
    ledger.mint_tokens(ledger.sender, 2 * tree.total)
    ledger.fund_rewards(tree.total)
    post = gas(ledger.post_epoch_root(tree.epoch, tree.root, tree.total))
    claims = [
        gas(ledger.claim(tree.epoch, p.index, p.account, p.amount, tree.proof(p.index))) for p in tree.payouts
    ]

    token = ledger.contract(ChainContract.TOKEN)
    web3 = ledger.chain.web3
    transfers = []
    for payout, account in zip(tree.payouts, accounts(providers, "transferee"), strict=True):
        tx = token.functions.transfer(account, payout.amount).transact({"from": ledger.sender})
        transfers.append(web3.eth.wait_for_transaction_receipt(tx)["gasUsed"])
    return Settlement(providers, post, claims, transfers)


def table(results: list[Settlement]) -> Table:
    shown = Table(title="Settling one epoch: gas, one Merkle root against one transfer per provider")
    for column in (
        "providers", "post", "claim median", "claim mean", "claim max",
        "transfer mean", "N transfers", "post / transfers", "(post + claims) / transfers",
    ):
        shown.add_column(column, justify="right")
    for r in results:
        paid = sum(r.transfers)
        shown.add_row(
            str(r.providers), f"{r.post:,}", f"{r.claim_median:,.0f}", f"{r.claim_mean:,.0f}",
            f"{max(r.claims):,}", f"{statistics.fmean(r.transfers):,.0f}", f"{paid:,}",
            f"{r.post / paid:.3f}", f"{r.settled / paid:.2f}",
        )
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, nargs="+", default=[4, 16, 64, 256])
    args = parser.parse_args()
    console = Console(width=140)
    results = []
    with tempfile.TemporaryDirectory() as state:
        for providers in args.providers:
            console.log(f"{providers} providers")
            results.append(measure(providers, Path(state) / str(providers)))
    console.print(table(results))

    posts = [r.post for r in results]
    medians = [r.claim_median for r in results]
    console.print(
        f"post: {min(posts):,} to {max(posts):,} gas whatever the number of providers "
        f"(spread {max(posts) - min(posts):,}: the root's zero bytes are cheaper calldata)."
    )
    console.print(
        f"claim median {min(medians):,.0f} to {max(medians):,.0f} gas "
        f"({'within' if max(medians) <= CLAIM_GOAL else 'over'} the {CLAIM_GOAL:,} goal); the first claim of "
        "every 256 leaves also creates its word of the claimed bitmap (about 17,000 more)."
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
