"""A local anvil node (a real JSON-RPC EVM) whose chain survives restarts.

The binary comes from the npm package ``@foundry-rs/anvil`` (``npm ci --prefix contracts``
installs it under ``contracts/node_modules``). It listens on 127.0.0.1 only and keeps its
chain in ``<data_dir>/anvil-state.json`` (``--state``: loaded at start, written every few
seconds and on exit), next to its pid file, its URL and its log. Starting a running node and
stopping a stopped one are no-ops, so ``flai chain up`` / ``down`` can be repeated.

    url = start(data_dir, 8545)   # "http://127.0.0.1:8545"
    status(data_dir).running      # True
    stop(data_dir)
"""

from __future__ import annotations

import errno
import json
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from flai.stack import alive, tail, terminate

HOST = "127.0.0.1"
NODE_MODULES = Path(__file__).resolve().parent / "node_modules"
STATE_FILE = "anvil-state.json"
PID_FILE = "anvil.pid"
URL_FILE = "anvil.url"
LOG_FILE = "anvil.log"
STATE_INTERVAL_S = 5  # how much chain a crash (SIGKILL, power loss) can lose at most
_POLL_S = 0.05
_PLATFORMS = {"linux": "linux", "darwin": "darwin"}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class AnvilError(Exception):
    """Base of the errors of anvil process control."""


class AnvilNotInstalledError(AnvilError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"anvil binary not found at {path}: run `npm ci --prefix contracts` to install it")
        self.path = path


class AnvilPortInUseError(AnvilError):
    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} on {HOST} is already in use: pick another port or stop what holds it")
        self.port = port


class AnvilAlreadyRunningError(AnvilError):
    def __init__(self, data_dir: Path, url: str) -> None:
        super().__init__(f"anvil for {data_dir} already runs at {url}: stop it first to change its port")
        self.data_dir = data_dir
        self.url = url


class AnvilStartError(AnvilError):
    def __init__(self, reason: str, log_file: Path) -> None:
        super().__init__(f"anvil did not start: {reason}; last lines of {log_file}:\n{tail(log_file)}")
        self.log_file = log_file


@dataclass(frozen=True)
class AnvilStatus:
    """What ``data_dir`` says about its node: ``running`` means alive and answering JSON-RPC."""

    running: bool
    pid: int | None
    url: str | None
    state_file: Path
    log_file: Path


def binary_path(node_modules: Path = NODE_MODULES) -> Path:
    """The anvil binary of this platform inside ``node_modules`` (raises if it is not there)."""
    system = _PLATFORMS.get(sys.platform)
    arch = _ARCHES.get(platform.machine().lower())
    binary = node_modules / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if system is None or arch is None or not binary.is_file():
        raise AnvilNotInstalledError(binary)
    return binary


def start(data_dir: Path, port: int = 8545, *, timeout_s: float = 10.0) -> str:
    """Starts anvil for ``data_dir`` on 127.0.0.1:``port`` and returns its URL once it answers.

    Returns at once if it already runs there.
    """
    data_dir = Path(data_dir)
    url = f"http://{HOST}:{port}"
    current = status(data_dir)
    if current.running:
        if current.url == url:
            return url
        raise AnvilAlreadyRunningError(data_dir, current.url)
    if current.pid is not None and _is_anvil(current.pid):  # alive but not answering: a wedged node
        terminate(current.pid, timeout_s)
    _clear(data_dir)
    binary = binary_path()
    _check_port_free(port)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = data_dir / LOG_FILE
    command = [
        str(binary),
        "--host", HOST,
        "--port", str(port),
        "--state", str(data_dir / STATE_FILE),
        "--state-interval", str(STATE_INTERVAL_S),
    ]  # fmt: skip
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (data_dir / PID_FILE).write_text(f"{process.pid}\n")
    (data_dir / URL_FILE).write_text(f"{url}\n")
    deadline = time.monotonic() + timeout_s
    while not _answers(url):
        if process.poll() is not None:
            _clear(data_dir)
            if "address already in use" in tail(log_file).lower():
                raise AnvilPortInUseError(port)
            raise AnvilStartError(f"it exited with status {process.returncode}", log_file)
        if time.monotonic() > deadline:
            terminate(process.pid, timeout_s)
            _clear(data_dir)
            raise AnvilStartError(f"no JSON-RPC answer at {url} within {timeout_s} s", log_file)
        time.sleep(_POLL_S)
    return url


def stop(data_dir: Path, *, timeout_s: float = 10.0) -> bool:
    """Stops the anvil of ``data_dir`` (SIGTERM, so it writes its state); False if none ran."""
    data_dir = Path(data_dir)
    pid = _read_pid(data_dir)
    stopped = pid is not None and _is_anvil(pid)
    if stopped:
        terminate(pid, timeout_s)
    _clear(data_dir)
    return stopped


def status(data_dir: Path) -> AnvilStatus:
    data_dir = Path(data_dir)
    pid = _read_pid(data_dir)
    url_file = data_dir / URL_FILE
    url = url_file.read_text().strip() if url_file.is_file() else None
    alive = pid is not None and _is_anvil(pid)
    return AnvilStatus(
        running=alive and url is not None and _answers(url),
        pid=pid if alive else None,
        url=url if alive else None,
        state_file=data_dir / STATE_FILE,
        log_file=data_dir / LOG_FILE,
    )


def _answers(url: str) -> bool:
    """Whether an anvil node answers JSON-RPC at ``url`` (its client version names it)."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "web3_clientVersion", "params": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(request, timeout=1.0) as response:
            return str(json.load(response).get("result", "")).startswith("anvil")
    except (OSError, ValueError):
        return False


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AnvilPortInUseError(port) from exc
            raise


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_anvil(pid: int) -> bool:
    """Whether ``pid`` is a live anvil (not a process that reused a stale pid)."""
    if not alive(pid):
        return False
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs (macOS): the pid file is all there is to go on
        return True
    try:
        command = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return Path(command.decode(errors="replace")).name == "anvil"


def _clear(data_dir: Path) -> None:
    for name in (PID_FILE, URL_FILE):
        (data_dir / name).unlink(missing_ok=True)
