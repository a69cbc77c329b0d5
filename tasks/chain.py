"""The configured chain's Ledger, opened once per process: the one handle every task records
through. Apart from ``tasks.lineage`` so that a query, which only records, loads none of the
training stack."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from contracts import Ledger
from flai.settings import get_settings


def ledger() -> Ledger:
    """The Ledger of the configured chain, opened once per process and configuration."""
    settings = get_settings()
    key = settings.chain_private_key
    return _ledger(settings.data_dir / "chain", settings.chain_url,
                   key.get_secret_value() if key else None)


@cache
def _ledger(state_dir: Path, url: str | None, private_key: str | None) -> Ledger:
    return Ledger.open(state_dir, url, private_key=private_key)
