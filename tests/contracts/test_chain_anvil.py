"""Process control of a real anvil node: start, stop, status, restarts that keep the chain."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flai.net import free_port

from contracts import Ledger, RoundMetrics, anvil, keccak_id


def test_chain_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = anvil.start(tmp_path, port)
    try:
        assert anvil.start(tmp_path, port) == url  # idempotent
        running = anvil.status(tmp_path)
        assert running.running and running.url == url and running.pid
        ledger = Ledger.open(tmp_path / "chain", url)
        task = keccak_id("restart")
        ledger.register_task(task, ledger.sender, "bafyspec", "heart")
        ledger.record_round(task, 0, "bafym", bytes(32), bytes(32), bytes(32), RoundMetrics(1, 2, 3, 4))
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
        assert again.get_round(task, 0).model_cid == "bafym"
    finally:
        anvil.stop(tmp_path)


def test_start_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((anvil.HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(anvil.AnvilPortInUseError, match=str(port)):
            anvil.start(tmp_path, port)
    assert not anvil.status(tmp_path).running


def test_start_refuses_a_second_port_while_running(anvil_url: str, tmp_path: Path) -> None:
    url = anvil.start(tmp_path, free_port())
    try:
        with pytest.raises(anvil.AnvilAlreadyRunningError, match=url):
            anvil.start(tmp_path, free_port())
    finally:
        anvil.stop(tmp_path)


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / anvil.PID_FILE).write_text("999999999\n")
    (tmp_path / anvil.URL_FILE).write_text("http://127.0.0.1:1\n")
    assert anvil.status(tmp_path) == anvil.AnvilStatus(
        False, None, None, tmp_path / anvil.STATE_FILE, tmp_path / anvil.LOG_FILE
    )
    assert not anvil.stop(tmp_path)
    assert not (tmp_path / anvil.PID_FILE).exists()


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(anvil.AnvilNotInstalledError, match=r"npm ci --prefix contracts"):
        anvil.binary_path(tmp_path / "node_modules")
    assert anvil.binary_path().is_file()
