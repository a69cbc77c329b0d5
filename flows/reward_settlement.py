"""Reward settlement: one run pays one epoch through one Merkle root.

An epoch is the governed tasks whose models their DAO accepted since the last settled epoch
(``tasks.settlement``). The run splits each task's escrowed pool over the providers of its
rounds (``flai.rewards.split``), records the settlement, then releases the pools, posts its
root and raises the paid providers' badge reputations. Every step is retry-safe, and so is the whole run: a re-run of a
settled epoch reads its recorded settlement back, posts nothing new and raises nothing twice.

    from flows.reward_settlement import reward_settlement
    settlement = reward_settlement()          # the next epoch
    settlement = reward_settlement(epoch=3)   # epoch 3 again: finishes it if a run failed
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import Field

from tasks.settlement import (
    Settlement,
    gather_contributions,
    list_models,
    plan_settlement,
    post_root,
    raise_reputation,
    record_settlement,
    report_settlement,
    split_rewards,
    target_epoch,
)


@flow(name="reward-settlement")
def reward_settlement(epoch: Annotated[int | None, Field(ge=1)] = None) -> Settlement | None:
    """Settle ``epoch`` (default: the next one). Returns its settlement, or None when no model
    was accepted since the last epoch (then nothing is recorded, and the epoch stays next)."""
    target = target_epoch(epoch)
    settlement = target.settlement
    if settlement is None:
        # Gather the tasks accepted since the last epoch, split each pool over its providers.
        gathered = gather_contributions(target.after_block)
        if not gathered.tasks:
            get_run_logger().info("epoch %d: no model accepted since block %d; nothing to settle",
                                  target.epoch, target.after_block)
            return None
        split = split_rewards(gathered)
        # Fix the epoch on chain (tree and proofs in the store) before anything is paid.
        settlement = plan_settlement(target, gathered, split)
        record_settlement(settlement)
    # Pay: the escrowed pools released, one root for the epoch; then reputations, once.
    post_root(settlement)
    raise_reputation(settlement)
    # The accepted models go on sale; their revenue follows the same shares.
    list_models(settlement)
    # Show it on the run.
    report_settlement(settlement)
    return settlement
