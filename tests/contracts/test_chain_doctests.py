"""The examples in the chain layer's docstrings run."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from contracts import compiled, manifest, market, records, revert


@pytest.mark.parametrize("module", [compiled, manifest, market, records, revert], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
