"""The chain tests run twice: on the embedded py-evm chain and on a real anvil node.

anvil is started once per session on a free loopback port, its state in a temporary
directory. When its binary is missing the anvil half fails (it does not skip): the suite
must not look green on a machine where the real node was never tried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flai.net import free_port

from contracts import Ledger
from deployments import anvil


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        anvil.binary_path()
        missing = None
    except anvil.AnvilNotInstalledError as exc:
        missing = str(exc)
    if missing:
        pytest.fail(missing, pytrace=False)
    data_dir = tmp_path_factory.mktemp("anvil")
    url = anvil.start(data_dir, free_port())
    yield url
    anvil.stop(data_dir)


@pytest.fixture(params=["embedded", "anvil"])
def chain_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded chain) or the URL of the session's anvil."""
    return None if request.param == "embedded" else request.getfixturevalue("anvil_url")


@pytest.fixture
def ledger(chain_url: str | None, tmp_path: Path) -> Ledger:
    """A fresh deployment of FLAI's contracts; the sender is the node's first account."""
    return Ledger.open(tmp_path / "chain", chain_url)


@pytest.fixture
def stranger(ledger: Ledger) -> Ledger:
    """The same deployment seen from an account that holds no role."""
    return ledger.as_sender(ledger.chain.unlocked_account(1))
