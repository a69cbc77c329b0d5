"""An epoch's reward tree: its root and proofs are those of OpenZeppelin's own
``@openzeppelin/merkle-tree`` (npm, run with node), and its proofs pay in ``RewardDistributor``."""

from __future__ import annotations

import doctest
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_utils import keccak, to_checksum_address

from contracts import Ledger
from flai.rewards import LEAF_ENCODING, EpochTreeValueError, epoch_tree, merkle

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
SIZES = (1, 2, 3, 7, 64)

# Builds the same leaves with @openzeppelin/merkle-tree, and loads our dump of the tree with
# it: prints the root and every proof of both.
OPENZEPPELIN = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const built = StandardMerkleTree.of(input.values, input.encoding);
const loaded = StandardMerkleTree.load(input.dump);
loaded.validate();
const proofs = (tree) => input.values.map((_, i) => tree.getProof(i));
console.log(JSON.stringify({
  root: built.root, proofs: proofs(built), loadedRoot: loaded.root, loadedProofs: proofs(loaded),
}));
"""


def payouts(count: int) -> list[tuple[str, int]]:
    """``count`` distinct accounts with distinct amounts, the same on every run."""
    return [
        (to_checksum_address(keccak(text=f"provider {i}")[-20:]), 10**18 + i * 7_919) for i in range(count)
    ]


def openzeppelin(epoch: int, paid: list[tuple[str, int]], dump: dict) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node (20+) is needed to run @openzeppelin/merkle-tree", pytrace=False)
    if not (CONTRACTS / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.fail("@openzeppelin/merkle-tree is missing: run `npm ci --prefix contracts`", pytrace=False)
    values = [[str(epoch), str(i), account, str(amount)] for i, (account, amount) in enumerate(paid)]
    run = subprocess.run(
        ["node", "-e", OPENZEPPELIN],
        input=json.dumps({"values": values, "encoding": list(LEAF_ENCODING), "dump": dump}),
        cwd=CONTRACTS,  # where require() finds node_modules
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(run.stdout)


@pytest.mark.parametrize("size", SIZES)
def test_root_and_proofs_match_openzeppelin(size: int) -> None:
    paid = payouts(size)
    tree = epoch_tree(5, paid)
    theirs = openzeppelin(5, paid, tree.to_json())
    ours = [["0x" + node.hex() for node in tree.proof(i)] for i in range(size)]
    assert theirs["root"] == theirs["loadedRoot"] == "0x" + tree.root.hex()
    assert theirs["proofs"] == theirs["loadedProofs"] == ours
    assert tree.total == sum(amount for _, amount in paid)


def test_the_epoch_is_part_of_every_leaf() -> None:
    assert epoch_tree(1, payouts(3)).root != epoch_tree(2, payouts(3)).root


def test_proofs_pay_in_the_contract(tmp_path: Path) -> None:
    """Leaves of every size claim on the embedded chain and pay their own amount: every leaf
    of the small trees, the first, a middle and the last of the large one (its proofs are
    OpenZeppelin's, above)."""
    ledger = Ledger.open(tmp_path / "chain")
    trees = [epoch_tree(epoch, payouts(size)) for epoch, size in enumerate(SIZES)]
    funds = sum(tree.total for tree in trees)
    ledger.mint_tokens(ledger.sender, funds)
    ledger.fund_rewards(funds)
    for tree in trees:
        ledger.post_epoch_root(tree.epoch, tree.root, tree.total)
        size = len(tree.payouts)
        for index in range(size) if size <= 7 else (0, size // 2, size - 1):
            payout = tree.payouts[index]
            before = ledger.token_balance(payout.account)
            ledger.claim(tree.epoch, index, payout.account, payout.amount, tree.proof(index))
            assert ledger.token_balance(payout.account) == before + payout.amount


@pytest.mark.parametrize(
    ("epoch", "paid", "field"),
    [
        (1, [], "payouts"),
        (-1, [("0x" + "11" * 20, 1)], "epoch"),
        (1, [("0x" + "11" * 20, 1), ("0x1234", 1)], "payouts[1].account"),
        (1, [("0x" + "11" * 20, 2**256)], "payouts[0].amount"),
    ],
)
def test_payouts_are_checked(epoch: int, paid: list[tuple[str, int]], field: str) -> None:
    with pytest.raises(EpochTreeValueError) as caught:
        epoch_tree(epoch, paid)
    assert caught.value.field == field


def test_proof_index_is_checked() -> None:
    with pytest.raises(EpochTreeValueError, match="index=2"):
        epoch_tree(1, payouts(2)).proof(2)


def test_docstring_examples() -> None:
    result = doctest.testmod(merkle)
    assert result.attempted > 0 and result.failed == 0
