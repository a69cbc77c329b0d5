"""``query``: one federated SQL query with JSON parameters, for an ad hoc deployment run.

    from prefect.deployments import run_deployment
    run_deployment("query/ad-hoc", parameters={"sql": "SELECT sex, COUNT(*) FROM heart GROUP BY sex"})
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flai.datasets import Dataset


@flow(name="query")
def query(sql: str, dataset: Dataset = Dataset.HEART,
          epsilon: Annotated[float | None, Field(gt=0)] = None) -> dict[str, Any]:
    """Answer ``sql`` over the providers of ``dataset``; the result and disclosure report are
    also attached to the run as artifacts."""
    from flows.fa_query import federated_query

    result = federated_query(sql, dataset, epsilon)
    return {"rows": result.table.to_pylist(), "disclosure": result.disclosure.__dict__,
            "participants": list(result.participants), "tx_hash": result.tx_hash}
