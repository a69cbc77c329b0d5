"""The runnable examples in the lineage, publishing and reporting modules."""

from __future__ import annotations

import doctest

import pytest

import flai.cli.lineage
import flai.lineage
import flai.reporting
import tasks.publish


@pytest.mark.parametrize("module", [flai.lineage, flai.reporting, tasks.publish, flai.cli.lineage],
                         ids=lambda module: module.__name__)
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
