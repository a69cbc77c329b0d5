"""``settle``: reward settlement with JSON parameters and a JSON result, for the weekly
deployment (``settle/weekly`` in ``prefect.yaml``) and the UI's "Run" form.

An epoch is the models accepted since the last one, so the schedule sets the epoch's length;
a run that finds none settles nothing and leaves the epoch for the next run. The governance
sync also starts it once a DAO accepts a model.

    from prefect.deployments import run_deployment
    run_deployment("settle/weekly", parameters={"epoch": 3}, timeout=600)  # epoch 3 again
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from pydantic import Field


@flow(name="settle")
def settle(epoch: Annotated[int | None, Field(ge=1)] = None) -> dict[str, Any]:
    """Settle ``epoch`` (default: the next one); its table and chart are on the subflow's run."""
    from flows.reward_settlement import reward_settlement

    settlement = reward_settlement(epoch)
    if settlement is None:
        return {"epoch": None, "tasks": [], "rounds": 0}
    tree = settlement.tree()
    return {
        "epoch": settlement.epoch,
        "tasks": [pool.task for pool in settlement.tasks],
        "rounds": len(settlement.records),
        "root": "0x" + tree.root.hex() if tree else None,
        "total": str(settlement.split.total),  # FLAI base units; a string, as JSON numbers lose digits
        "amounts": {r.provider: str(r.amount) for r in settlement.split.rewards},
    }
