"""`flai lineage` holds the owner's mirror against the chain: a round the node lost (restarted
from an older state) is reported, and `--repair` records it again from the mirror."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.lineage  # noqa: F401  (registers `flai lineage` on the app)
from contracts import ChainContract, RoundMetrics, keccak_id
from deployments import anvil
from cli import app
from flai.crypto import KeyStore, publish_model
from flai.lineage import LineageEntry, LineageMirror, model_context, participants_commitment
from flai.net import free_port
from flai.settings import get_settings
from tasks.lineage import ledger, round_transactions
from tasks.publish import content_store

TASK = "repair-1"
PARTICIPANTS = ("cleveland", "hungary")


@pytest.fixture
def chain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stack-like anvil: the settings' data directory keeps its chain, FLAI_CHAIN_URL names it."""
    data_dir = tmp_path / "data"
    url = anvil.start(data_dir / "chain", free_port())
    monkeypatch.setenv("FLAI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FLAI_CHAIN_URL", url)
    get_settings.cache_clear()
    yield data_dir / "chain"
    anvil.stop(data_dir / "chain")
    get_settings.cache_clear()


def record_round(number: int) -> LineageEntry:
    """Publishes a model, records its round and mirrors it, as the lineage step does."""
    chain, data_dir = ledger(), get_settings().data_dir
    model = publish_model(content_store(), f"model {number}".encode(),
                          KeyStore.for_data_dir(data_dir).load_or_create(TASK), model_context(TASK, number))
    commitment = participants_commitment(PARTICIPANTS)
    metrics = RoundMetrics(800_000 + number, 400_000, len(PARTICIPANTS), 300)
    result = chain.record_round(keccak_id(TASK), number - 1, model.cid, model.sha256, commitment,
                                "ab" * 32, metrics)
    entry = LineageEntry(chain.chain.chain_id, chain.manifest.addresses[ChainContract.REGISTRY], TASK,
                         number - 1, model.cid, model.sha256, PARTICIPANTS, commitment, "ab" * 32,
                         metrics.accuracy_ppm, metrics.loss_micro, metrics.samples, result.tx_hash,
                         result.block_number)
    LineageMirror.for_data_dir(data_dir).record(entry)
    return entry


def lineage_cli(*args: str):
    return CliRunner().invoke(app, ["lineage", TASK, *args], catch_exceptions=False)


def test_a_round_the_chain_lost_is_reported_and_repaired(chain_dir: Path) -> None:
    chain = ledger()
    chain.register_task(keccak_id(TASK), chain.sender, content_store().put(b"spec"), "heart")
    record_round(1)
    older = chain_dir.parent / "older-state.json"
    shutil.copyfile(chain_dir / anvil.STATE_FILE, older)
    lost = record_round(2)
    # The node comes back from an older state (as a crash between two writes of its own left it).
    url = anvil.status(chain_dir).url
    anvil.stop(chain_dir)
    shutil.copyfile(older, chain_dir / anvil.STATE_FILE)
    anvil.start(chain_dir, int(url.rsplit(":", 1)[1]))
    assert chain.round_count(keccak_id(TASK)) == 1

    reported = lineage_cli()
    assert reported.exit_code == 1, reported.output
    output = " ".join(reported.output.split())
    assert f"mirror: round 2, tx {lost.tx_hash} (block {lost.block_number}): missing on chain" in output
    assert "all 1 round(s) verified" in output  # what the chain holds is sound

    repaired = lineage_cli("--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "recorded round 2 again" in repaired.output
    assert "all 2 round(s) verified ✓" in repaired.output
    # Sent again from the same account at the same nonce, the transaction may well have the
    # same hash: the mirror names whichever the chain now holds.
    again = round_transactions(chain, TASK)[1]
    mirrored = LineageMirror.for_data_dir(get_settings().data_dir).rounds(TASK)[1]
    assert (mirrored.tx_hash, mirrored.block_number) == (again.tx_hash, again.block_number)
    assert lineage_cli().exit_code == 0  # nothing left to report
