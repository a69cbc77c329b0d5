"""A real anvil node: process control (start, stop, status, restarts that keep the chain), and
what the chain client acknowledges being durable on it: written to the node's state file
(a local anvil) or under enough blocks (any other node), with a node that does not answer a
typed error."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from web3 import HTTPProvider, Web3

from contracts import ChainContract, Ledger, LedgerConnectionError, RoundMetrics, connect, keccak_id
from contracts.errors import LedgerNotDurableError
from contracts.ledger import Chain, Durability, _durability
from deployments import anvil
from deployments.processes import PortInUseError
from flai.net import free_port
from flai.settings import get_settings

METRICS = RoundMetrics(810_000, 450_000, 3, 900)


def record(ledger: Ledger, task: bytes, round: int):
    return ledger.record_round(task, round, f"bafy{round}", bytes(32), bytes(32), bytes(32), METRICS)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory the settings point at, as the stack's clients' do."""
    monkeypatch.setenv("FLAI_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    anvil.stop(tmp_path / "data" / "chain")
    get_settings.cache_clear()  # last: stopping reads them


def test_mined_blocks_leave_nothing_on_disk(tmp_path: Path) -> None:
    """A vote mines a voting period of blocks; anvil's default wrote every old block's state
    to disk (gigabytes per test session). The node FLAI starts keeps the recent ones in memory."""
    url = anvil.start(tmp_path, free_port())
    try:
        web3 = Web3(HTTPProvider(url))
        web3.provider.make_request("anvil_mine", [hex(3 * anvil.STATES_KEPT + 1_000)])
        latest = web3.eth.block_number
        assert latest > 3 * anvil.STATES_KEPT
        account = web3.eth.accounts[0]
        assert web3.eth.get_balance(account, block_identifier=latest - anvil.STATES_KEPT // 2) > 0
        written = [path for path in (tmp_path / anvil.STATES_DIR).rglob("*") if path.is_file()]
        assert written == []
    finally:
        anvil.stop(tmp_path)


def test_chain_survives_a_restart(tmp_path: Path) -> None:
    """Transactions from a client that does not write the state (its data directory is not
    the node's) survive a clean stop: ``stop`` writes it."""
    port = free_port()
    url = anvil.start(tmp_path, port)
    try:
        assert anvil.start(tmp_path, port) == url  # idempotent
        running = anvil.status(tmp_path)
        assert running.running and running.url == url and running.pid
        ledger = Ledger.open(tmp_path / "chain", url)
        assert ledger.chain.durability == Durability()
        task = keccak_id("restart")
        ledger.register_task(task, ledger.sender, "bafyspec", "heart")
        record(ledger, task, 0)
    finally:
        assert anvil.stop(tmp_path)
    assert not anvil.status(tmp_path).running
    assert not anvil.stop(tmp_path)  # idempotent
    assert anvil.status(tmp_path).state_file.stat().st_size > 0
    assert "Listening on 127.0.0.1" in anvil.status(tmp_path).log_file.read_text()

    anvil.start(tmp_path, port)
    try:
        again = Ledger.open(tmp_path / "chain", url)
        assert again.manifest == ledger.manifest
        assert again.get_round(task, 0).model_cid == "bafy0"
    finally:
        anvil.stop(tmp_path)


@pytest.mark.slow
def test_an_acknowledged_round_survives_kill_9(data_dir: Path) -> None:
    """SIGKILL right after the receipt: the round, its transaction and block come back from
    the state file. The same send without the write is lost, as it was before."""
    chain_dir = data_dir / "chain"
    url = anvil.start(chain_dir, free_port())
    ledger = Ledger.open(chain_dir, url)
    assert ledger.chain.durability.local_node.state_file == chain_dir / "anvil-state.json"
    task = keccak_id("kill-9")
    ledger.register_task(task, ledger.sender, "bafyspec", "heart")
    acknowledged = record(ledger, task, 0)
    unguarded = Chain(Web3(HTTPProvider(url)), url, ledger.chain.chain_id)  # no Durability
    Ledger(unguarded, ledger.manifest, ledger.sender).record_round(
        task, 1, "bafy1", bytes(32), bytes(32), bytes(32), METRICS)
    block = ledger.chain.web3.eth.get_block(acknowledged.block_number)
    psutil.Process(anvil.status(chain_dir).pid).kill()

    anvil.start(chain_dir, free_port())
    again = Ledger.open(chain_dir, anvil.status(chain_dir).url)
    assert again.round_count(task) == 1  # round 1 was never written: gone with the node
    assert again.get_round(task, 0).model_cid == "bafy0"
    receipt = again.chain.web3.eth.get_transaction_receipt(acknowledged.tx_hash)
    assert (receipt["blockNumber"], receipt["blockHash"]) == (acknowledged.block_number, block["hash"])
    (event,) = again.contract(ChainContract.REGISTRY).events.RoundRecorded().get_logs(from_block=0)
    assert event["transactionHash"].to_0x_hex() == acknowledged.tx_hash


def test_a_node_that_is_down_is_a_typed_error(data_dir: Path) -> None:
    chain_dir = data_dir / "chain"
    ledger = Ledger.open(chain_dir, anvil.start(chain_dir, free_port()))
    task = keccak_id("down")
    ledger.register_task(task, ledger.sender, "bafyspec", "heart")
    psutil.Process(anvil.status(chain_dir).pid).kill()
    for action in (lambda: ledger.round_count(task), lambda: record(ledger, task, 0)):
        with pytest.raises(LedgerConnectionError) as error:
            action()
        assert error.value.url == ledger.chain.url and error.value.method
        assert isinstance(error.value, ConnectionError)  # what retry conditions look for
    with pytest.raises(LedgerConnectionError, match="eth_chainId"):
        connect(f"http://127.0.0.1:{free_port()}")


def test_confirmations_are_awaited_on_any_other_node(anvil_url: str, tmp_path: Path) -> None:
    base = Ledger.open(tmp_path / "chain", anvil_url)
    web3 = base.chain.web3
    waiting = Ledger(Chain(web3, anvil_url, base.chain.chain_id, Durability(confirmations=2)),
                     base.manifest, base.sender)
    miner = threading.Timer(1.0, lambda: web3.provider.make_request("anvil_mine", ["0x2"]))
    miner.start()
    started = time.monotonic()
    result = waiting.register_task(keccak_id("confirmations"), base.sender, "bafyspec", "heart")
    assert time.monotonic() - started >= 1.0
    assert web3.eth.block_number - result.block_number >= 2
    miner.join()

    impatient = Ledger(Chain(web3, anvil_url, base.chain.chain_id, Durability(confirmations=1)),
                       base.manifest, base.sender, receipt_timeout_s=1.0)
    with pytest.raises(LedgerNotDurableError, match="fewer than 1 confirmations"):
        impatient.register_task(keccak_id("never confirmed"), base.sender, "bafyspec", "heart")


def test_durability_follows_the_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = anvil.start(data_dir / "chain", free_port())
    assert _durability(url).local_node.chain_dir == data_dir / "chain"
    monkeypatch.setenv("FLAI_CHAIN_CONFIRMATIONS", "3")
    get_settings.cache_clear()
    assert _durability(f"http://127.0.0.1:{free_port()}") == Durability(confirmations=3)


def test_start_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=str(port)):
            anvil.start(tmp_path, port)
    assert not anvil.status(tmp_path).running


def test_start_refuses_a_second_port_while_running(tmp_path: Path) -> None:
    url = anvil.start(tmp_path, free_port())
    try:
        with pytest.raises(anvil.AnvilAlreadyRunningError, match=url):
            anvil.start(tmp_path, free_port())
    finally:
        anvil.stop(tmp_path)


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    """A pid that lives, but started after the pid file was written, is not the node."""
    node = anvil.process(tmp_path)
    node.pid_file.write_text(f"{psutil.Process().pid} 1.0\n")
    node.url_file.write_text("http://127.0.0.1:1\n")
    assert anvil.status(tmp_path) == anvil.AnvilStatus(
        False, None, None, tmp_path / "anvil-state.json", tmp_path / "anvil.log"
    )
    assert not anvil.stop(tmp_path)  # and this process lives on
    assert not node.pid_file.exists()


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(anvil.AnvilNotInstalledError, match=r"npm ci --prefix contracts"):
        anvil.binary_path(tmp_path / "node_modules")
    assert anvil.binary_path().is_file()
