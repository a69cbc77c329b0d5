"""Process management for the local stack: pid files, port checks, probes, typed errors.

``deployments/stack.py`` composes these into ``flai up`` / ``down`` / ``status``; this module
knows nothing of Prefect, anvil or Ray beyond how to start, find and stop a process. Each
managed process has a pid file, an address file and a log under ``<data_dir>/stack``; a
command-line check keeps a stale pid file from naming (and stopping) an unrelated process
that reused the pid.

    >>> config = StackConfig(Path("/srv/flai"), prefect_port=4300, ipfs_api="http://127.0.0.1:5101")
    >>> config.api_url, config.ipfs_port, config.ray_address
    ('http://127.0.0.1:4300/api', 5101, None)
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from flai.settings import Settings

HOST = "127.0.0.1"
DEFAULT_PREFECT_PORT = 4200
DEFAULT_RAY_PORT = 6379
PROJECT_DIR = Path(__file__).resolve().parents[1]  # where prefect.yaml and the flows live
STOP_TIMEOUT_S = 20.0
POLL_S = 0.2
_LOOPBACK_NAMES = {"127.0.0.1", "localhost"}


class StackError(Exception):
    """Base of the errors of the local stack."""


class StackPortInUseError(StackError):
    """Ports the stack needs are held by something else; nothing was started."""

    def __init__(self, taken: Mapping[str, int]) -> None:
        listing = ", ".join(f"{name} needs {HOST}:{port}" for name, port in taken.items())
        super().__init__(f"ports already in use ({listing}): stop what holds them or choose "
                         "other ports; nothing was started")
        self.taken = dict(taken)


class StackAlreadyRunningError(StackError):
    """A part runs for this data directory, but not where the configuration asks for it."""

    def __init__(self, component: str, address: str, wanted: int) -> None:
        super().__init__(f"{component} already runs at {address}, not on port {wanted}: "
                         "`flai down` first to move it")
        self.component = component
        self.address = address
        self.wanted = wanted


class StackUnhealthyError(StackError):
    """A part's process is alive but does not answer; ``flai down`` stops it."""

    def __init__(self, component: str, pid: int, log_file: Path | None) -> None:
        super().__init__(f"{component} (pid {pid}) runs but does not answer: `flai down` stops it; "
                         f"see {log_file}")
        self.component = component
        self.pid = pid
        self.log_file = log_file


class StackStartError(StackError):
    """A part did not come up; the parts the same ``up`` had started were stopped again."""

    def __init__(self, component: str, reason: str, log_file: Path | None = None) -> None:
        where = f"\nlast lines of {log_file}:\n{tail(log_file)}" if log_file else ""
        super().__init__(f"{component} did not start: {reason}{where}")
        self.component = component
        self.reason = reason
        self.log_file = log_file


class StackConfigError(StackError):
    def __init__(self, name: str, value: object, expected: str) -> None:
        super().__init__(f"{name}={value!r}: expected {expected}")
        self.name = name
        self.value = value
        self.expected = expected


class StackToolMissingError(StackError):
    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} is not installed: {hint}")
        self.tool = tool
        self.hint = hint


class Action(Enum):
    """What ``up``/``down`` did to a part; ``status`` reports RUNNING, STOPPED or OFF."""

    STARTED = "started"
    ALREADY_RUNNING = "already running"
    STOPPED = "stopped"
    NOT_RUNNING = "not running"
    RUNNING = "running"
    OFF = "off"


@dataclass(frozen=True)
class ComponentReport:
    name: str
    action: Action
    pid: int | None = None
    address: str | None = None
    log_file: Path | None = None
    detail: str = ""


@dataclass(frozen=True)
class StackConfig:
    """Which parts to run and on which loopback ports.

    ``ipfs_api`` names the daemon's RPC address; the stack runs a daemon only when that is
    on loopback (another host's daemon is someone else's to run). ``ray`` starts a Ray head;
    its ``ray_resources`` (e.g. ``{"org:cleveland": 1}``) let provider actors be pinned to it.
    """

    data_dir: Path
    prefect_port: int = DEFAULT_PREFECT_PORT
    anvil_port: int = 8545
    ipfs_api: str | None = None
    ray: bool = False
    ray_port: int = DEFAULT_RAY_PORT
    ray_resources: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> StackConfig:
        """The data directory, anvil port and IPFS address come from settings."""
        values = {"data_dir": settings.data_dir, "anvil_port": settings.anvil_port,
                  "ipfs_api": settings.ipfs_api}
        return cls(**(values | overrides))

    @property
    def stack_dir(self) -> Path:
        return self.data_dir / "stack"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def chain_url(self) -> str:
        return f"http://{HOST}:{self.anvil_port}"

    @property
    def ray_address(self) -> str | None:
        return f"{HOST}:{self.ray_port}" if self.ray else None

    @property
    def ipfs_port(self) -> int | None:
        """The port of a loopback ``ipfs_api`` the stack runs; None: none to run."""
        if self.ipfs_api is None:
            return None
        parts = urlsplit(self.ipfs_api)
        if parts.scheme != "http" or parts.port is None:
            raise StackConfigError("ipfs_api", self.ipfs_api, "an http://HOST:PORT RPC address")
        return parts.port if parts.hostname in _LOOPBACK_NAMES else None


@dataclass(frozen=True)
class Managed:
    """A process of the stack, known by its pid file and words its command line holds."""

    name: str
    markers: tuple[str, ...]

    def pid_file(self, stack_dir: Path) -> Path:
        return stack_dir / f"{self.name}.pid"

    def url_file(self, stack_dir: Path) -> Path:
        return stack_dir / f"{self.name}.url"

    def log_file(self, stack_dir: Path) -> Path:
        return stack_dir / f"{self.name}.log"

    def pid(self, stack_dir: Path) -> int | None:
        """The live pid of this part, or None (no pid file, or a stale one)."""
        try:
            pid = int(self.pid_file(stack_dir).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) and _command_has(pid, self.markers) else None

    def address(self, stack_dir: Path) -> str | None:
        path = self.url_file(stack_dir)
        return path.read_text().strip() if path.is_file() else None

    def spawn(self, stack_dir: Path, argv: list[str], env: Mapping[str, str],
              address: str) -> subprocess.Popen:
        """Start ``argv`` in a session of its own, so that stopping it stops its children."""
        stack_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(stack_dir).open("ab") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=dict(env),
                                       cwd=PROJECT_DIR, start_new_session=True)
        self.record(stack_dir, process.pid, address)
        return process

    def record(self, stack_dir: Path, pid: int, address: str) -> None:
        stack_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file(stack_dir).write_text(f"{pid}\n")
        self.url_file(stack_dir).write_text(f"{address}\n")

    def stop(self, stack_dir: Path) -> bool:
        """Stops the process (see :func:`terminate`); False if it was not running."""
        pid = self.pid(stack_dir)
        if pid is not None:
            terminate(pid)
        self.forget(stack_dir)
        return pid is not None

    def forget(self, stack_dir: Path) -> None:
        self.pid_file(stack_dir).unlink(missing_ok=True)
        self.url_file(stack_dir).unlink(missing_ok=True)

    def wait_until(self, process: subprocess.Popen, stack_dir: Path, ready: Callable[[], bool],
                   timeout_s: float, what: str) -> None:
        """Polls ``ready`` until it holds; raises if ``process`` exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None:
                raise StackStartError(self.name, f"it exited with status {process.returncode}",
                                      self.log_file(stack_dir))
            if time.monotonic() > deadline:
                raise StackStartError(self.name, f"{what} within {timeout_s:g} s",
                                      self.log_file(stack_dir))
            time.sleep(POLL_S)


def port_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_of(address: str) -> int | None:
    """The port in ``http://host:port[/...]`` or ``host:port``.

    >>> port_of("http://127.0.0.1:4200"), port_of("127.0.0.1:6379"), port_of("nowhere")
    (4200, 6379, None)
    """
    parts = urlsplit(address if "//" in address else f"//{address}")
    return parts.port


def http_client() -> httpx.Client:
    return httpx.Client(timeout=2.0, trust_env=False)  # loopback: never through a proxy


def accepts(address: str | None) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    port = port_of(address) if address else None
    if port is None:
        return False
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def tool(name: str) -> str:
    """A console script of this environment (next to its python), else one on PATH."""
    sibling = Path(sys.executable).parent / name
    found = str(sibling) if sibling.is_file() else shutil.which(name)
    if found is None:
        raise StackToolMissingError(name, "install FLAI's Python environment (make env)")
    return found


def alive(pid: int) -> bool:
    try:  # reap it first if it is our own exited child, which would otherwise linger as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``. A process that leads its own process group
    (every part ``spawn`` starts) is signalled with its whole group, so a server's children
    (uvicorn, a flow run, Ray's daemons) stop with it."""
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return

    def gone() -> bool:
        return not alive(pid) and (not group or not _group_alive(pid))

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig) if group else os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if gone():
                return
            time.sleep(POLL_S)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_has(pid: int, markers: tuple[str, ...]) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs (macOS): the pid file is all there is to go on
        return True
    try:
        command = (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return all(marker in command.decode(errors="replace") for marker in markers)


def tail(path: Path | None, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""
    except FileNotFoundError:
        return "(no log)"
