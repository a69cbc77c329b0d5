"""`flai demo`, end to end, at a reduced size."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app

pytestmark = pytest.mark.slow


def test_flai_demo_trains_and_compares_with_central(prefect_server, ray_cluster):
    result = CliRunner().invoke(app, ["demo", "--rounds", "2"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    out = result.output
    assert "Federated training: heart, 4 providers" in out
    assert "Federated vs central" in out and "difference" in out
    rows = [line for line in out.splitlines() if line.startswith("│") and "│       4 │" in line]
    assert len(rows) == 2, out  # one row per round, all four hospitals took part
