"""`flai demo`, end to end, at a reduced size: a governed job from proposal to claim."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app

pytestmark = pytest.mark.slow


def test_flai_demo_walks_a_governed_job_from_proposal_to_claim(prefect_server, ray_cluster):
    result = CliRunner().invoke(app, ["demo", "--rounds", "2"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    out = result.output
    assert "modeler proposed task heart-4-logreg" in out
    assert "Proposals of the healthcare DAO" in out and "executed" in out
    assert "Validation of heart-4-logreg" in out and "demographic-parity gap" in out
    assert "settled" in out  # the task's state after the settlement
    assert "epoch" in out and "paid" in out  # a hospital claimed its reward
    assert "Federated vs central" in out and "difference" in out
