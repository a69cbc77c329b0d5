"""Reward settlement's pure parts: the contribution record, the reward rule, the Merkle tree an
epoch is paid through."""

from flai.rewards.merkle import LEAF_ENCODING, EpochTree, EpochTreeValueError, Payout, epoch_tree

__all__ = ["LEAF_ENCODING", "EpochTree", "EpochTreeValueError", "Payout", "epoch_tree"]
