"""``flai up``/``down``/``status`` when things are in the way: taken ports, stale pid files,
nothing running. These start no server, so they are fast."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.stack  # noqa: F401  (registers up/down/status on the app)
from deployments import stack
from cli import app
from flai.stack import Action, StackConfig, StackConfigError, StackPortInUseError, StackStartError


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def nothing_runs(data_dir: Path) -> bool:
    reports = stack.status(StackConfig(data_dir))
    no_pid_files = not list((data_dir / "stack").glob("*.pid")) and not list(data_dir.glob("chain/*.pid"))
    return no_pid_files and all(r.action in (Action.STOPPED, Action.OFF) for r in reports)


def test_taken_port_is_a_typed_error_and_nothing_starts(stack_config: StackConfig, held_port: int) -> None:
    config = StackConfig(stack_config.data_dir, prefect_port=stack_config.prefect_port,
                         anvil_port=held_port, ipfs_api=stack_config.ipfs_api)
    with pytest.raises(StackPortInUseError) as error:
        stack.up(config)
    assert error.value.taken == {"anvil": held_port}
    assert nothing_runs(config.data_dir)


def test_cli_up_on_a_taken_port_says_so_and_exits_1(cli_data_dir: Path, held_port: int) -> None:
    result = CliRunner().invoke(app, ["up", "--prefect-port", str(held_port)])
    assert result.exit_code == 1
    assert f"prefect-server needs 127.0.0.1:{held_port}" in " ".join(result.output.split())
    assert "nothing was started" in result.output
    assert nothing_runs(cli_data_dir)


def test_one_port_for_two_parts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError):
        stack.up(StackConfig(tmp_path, prefect_port=9545, anvil_port=9545))
    assert nothing_runs(tmp_path)


def test_down_and_status_with_nothing_running(cli_data_dir: Path) -> None:
    assert {r.action for r in stack.down(cli_data_dir)} == {Action.NOT_RUNNING}
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "prefect-server" in result.output and "stopped" in result.output


def test_a_stale_pid_file_never_names_an_unrelated_process(tmp_path: Path) -> None:
    """A pid file left by a crash may hold a pid the system gave to something else since:
    here, this test's own process, which started after the time the file records. Neither
    status nor down may take it for the server."""
    pid_file = tmp_path / "stack" / "prefect-server.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()} 1.0\n")
    server = stack.status(StackConfig(tmp_path))[0]
    assert (server.name, server.action, server.pid) == ("prefect-server", Action.STOPPED, None)
    assert stack.down(tmp_path)[0].action is Action.NOT_RUNNING  # and this process lives on
    assert not pid_file.exists()


@pytest.mark.slow
def test_a_part_that_fails_stops_what_the_same_up_started(stack_config: StackConfig) -> None:
    """A corrupt Prefect database: the server exits, and the anvil and IPFS daemon that this
    `up` had already started are stopped again, so a fixed `up` starts from a clean slate."""
    database = stack_config.data_dir / "prefect" / "prefect.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StackStartError) as error:
        stack.up(stack_config)
    assert error.value.component == "prefect-server"
    assert nothing_runs(stack_config.data_dir)
