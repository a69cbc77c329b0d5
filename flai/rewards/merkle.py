"""The Merkle tree that pays an epoch: one root on chain, one proof per provider.

The tree is OpenZeppelin's ``StandardMerkleTree`` (built with ``murky-tree``, which produces
the format of the npm ``@openzeppelin/merkle-tree``), so ``RewardDistributor`` checks its
proofs with OpenZeppelin's ``MerkleProof`` and anyone can rebuild or verify it with the
JavaScript library. A leaf is the ABI-encoded ``(uint256 epoch, uint256 index, address
account, uint256 amount)``, hashed twice with keccak256; ``index`` is the payout's position in
the list the tree was built from, and is what the contract marks as claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, to_bytes, to_checksum_address
from murky_tree import StandardMerkleTree

from flai.rewards.errors import RewardsInputError

LEAF_ENCODING = ("uint256", "uint256", "address", "uint256")
"""The ABI types of a leaf: ``(epoch, index, account, amount)``."""

_UINT256 = 2**256


class EpochTreeValueError(RewardsInputError):
    """A payout cannot be put in an epoch's tree."""


@dataclass(frozen=True)
class Payout:
    """Leaf ``index`` of an epoch: ``amount`` FLAI base units for ``account``."""

    index: int
    account: str
    amount: int


@dataclass(frozen=True, eq=False)
class EpochTree:
    """An epoch's payouts and the Merkle tree over them."""

    epoch: int
    payouts: tuple[Payout, ...]
    tree: StandardMerkleTree[Any]

    @property
    def root(self) -> bytes:
        """The 32-byte root to post on chain."""
        return to_bytes(hexstr=self.tree.root)

    @property
    def total(self) -> int:
        """The sum of the payouts: what posting the root reserves."""
        return sum(payout.amount for payout in self.payouts)

    def proof(self, index: int) -> list[bytes]:
        """The proof of payout ``index``, as the contract's ``bytes32[]``."""
        if not 0 <= index < len(self.payouts):
            raise EpochTreeValueError("index", index, f"a payout index below {len(self.payouts)}")
        return [to_bytes(hexstr=node) for node in self.tree.get_proof(index)]

    def to_json(self) -> dict[str, Any]:
        """The tree in ``@openzeppelin/merkle-tree``'s dump format (``StandardMerkleTree.load``):
        what a provider needs to find its leaf and proof without trusting the settler."""
        return self.tree.to_json()


def epoch_tree(epoch: int, payouts: Sequence[tuple[str, int]]) -> EpochTree:
    """The tree paying ``payouts`` (account, amount) in epoch ``epoch``; each payout's index is
    its position in ``payouts``.

    >>> tree = epoch_tree(3, [("0x" + "11" * 20, 5), ("0x" + "22" * 20, 7)])
    >>> tree.total, len(tree.root), tree.payouts[1].index
    (12, 32, 1)
    >>> StandardMerkleTree.verify(tree.tree.root, list(LEAF_ENCODING),
    ...     (3, 1, tree.payouts[1].account, 7), [p.hex() for p in tree.proof(1)])
    True
    """
    _check_uint("epoch", epoch)
    if not payouts:
        raise EpochTreeValueError("payouts", payouts, "at least one payout")
    leaves = tuple(_payout(index, account, amount) for index, (account, amount) in enumerate(payouts))
    values = [(epoch, leaf.index, leaf.account, leaf.amount) for leaf in leaves]
    return EpochTree(epoch, leaves, StandardMerkleTree.of(values, list(LEAF_ENCODING)))


def _payout(index: int, account: str, amount: int) -> Payout:
    if not isinstance(account, str) or not is_address(account):
        raise EpochTreeValueError(f"payouts[{index}].account", account, "an EVM address")
    _check_uint(f"payouts[{index}].amount", amount)
    return Payout(index, to_checksum_address(account), amount)


def _check_uint(field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _UINT256:
        raise EpochTreeValueError(field, value, "an integer in [0, 2**256)")
