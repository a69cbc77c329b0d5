"""Process control of the local stack, on psutil: the one place that starts, finds and stops
the stack's processes (the Prefect server and worker, anvil, the IPFS daemon, a Ray head).

A :class:`Managed` process leaves three files in its directory: ``<name>.pid`` (its pid and
start time), ``<name>.url`` (where it answers) and ``<name>.log``. The start time makes a
stale pid file harmless: a pid the system has since given to another process names a process
that started later, so it is not taken for (or stopped as) the part.

Stopping stops a process tree: the process, its descendants and whatever stayed in its session
(every part is started in a session of its own), SIGTERM first and SIGKILL after a timeout.
Every part also carries :data:`MARKER` in its environment, which its children (flow runs, Ray's
daemons) inherit, so :func:`marked` finds a stack's processes that escaped their tree.

    part = Managed("anvil", data_dir / "chain")
    process = part.start([binary, "--port", "8545"], env=os.environ, address="http://127.0.0.1:8545")
    part.wait_ready(process, lambda: accepts("127.0.0.1:8545"), 10.0, "nothing listens")
    part.stop()
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 20.0
POLL_S = 0.1
# psutil derives a start time from the boot time and the clock ticks since: the same process
# always gives the same value; a process that reused the pid started later, by far more.
_START_TIME_TOLERANCE_S = 0.05
MARKER = "FLAI_STACK"  # environment variable: the data directory of the stack a process belongs to


class ProcessError(Exception):
    """Base of the errors of process control; ``name`` is the process's."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class ProcessStartError(ProcessError):
    """A process exited or did not become ready in time; it was stopped again."""

    def __init__(self, name: str, reason: str, log_file: Path) -> None:
        self.log_tail = tail(log_file)
        super().__init__(name, f"{name} did not start: {reason}; last lines of {log_file}:\n"
                               f"{self.log_tail}")
        self.reason = reason
        self.log_file = log_file


class PortInUseError(ProcessError):
    """Something else listens where a process should."""

    def __init__(self, name: str, port: int) -> None:
        super().__init__(name, f"{name} needs {HOST}:{port}, which is already in use: pick "
                               "another port or stop what holds it")
        self.port = port


@dataclass(frozen=True)
class Managed:
    """A detached process known by its pid, address and log files in ``directory``."""

    name: str
    directory: Path

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def url_file(self) -> Path:
        return self.directory / f"{self.name}.url"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def process(self) -> psutil.Process | None:
        """The live process the pid file names, or None (no file, a dead or a reused pid)."""
        try:
            pid, started = self.pid_file.read_text().split()
            process = psutil.Process(int(pid))
            same = abs(process.create_time() - float(started)) < _START_TIME_TOLERANCE_S
        except (FileNotFoundError, ValueError, psutil.Error):
            return None
        return process if same and _alive(process) else None

    def address(self) -> str | None:
        return self.url_file.read_text().strip() if self.url_file.is_file() else None

    def start(self, argv: list[str], *, env: Mapping[str, str], address: str,
              cwd: Path | None = None) -> psutil.Popen:
        """Starts ``argv`` detached (a session of its own, output to the log) and records it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = psutil.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                                   start_new_session=True)
        self.pid_file.write_text(f"{process.pid} {process.create_time()!r}\n")
        self.url_file.write_text(f"{address}\n")
        return process

    def wait_ready(self, process: psutil.Process, ready: Callable[[], bool], timeout_s: float,
                   what: str) -> None:
        """Polls ``ready`` until it holds. If the process exits or time runs out, stops it,
        forgets it and raises :class:`ProcessStartError` (``what``: what did not happen)."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if not _alive(process):
                self.forget()
                raise ProcessStartError(self.name, f"it exited with status {_exit_code(process)}",
                                        self.log_file)
            if time.monotonic() > deadline:
                self.stop()
                raise ProcessStartError(self.name, f"{what} within {timeout_s:g} s", self.log_file)
            time.sleep(POLL_S)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stops the process tree (:func:`stop_tree`) and forgets it; False if none ran."""
        process = self.process()
        if process is not None:
            stop_tree(process, timeout_s)
        self.forget()
        return process is not None

    def forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        self.url_file.unlink(missing_ok=True)


def stop_tree(root: psutil.Process, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to ``root``, its descendants and its session, then SIGKILL to what is left
    after ``timeout_s``. All are signalled at once, as a terminal's Ctrl-C would: a server's
    workers may otherwise outlive it when it dies first."""
    stop_all(tree(root), timeout_s)


def stop_all(processes: Iterable[psutil.Process], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to each of ``processes``, then SIGKILL to those alive after ``timeout_s``."""
    remaining = _signal(processes, signal.SIGTERM)
    _, alive = psutil.wait_procs(remaining, timeout=timeout_s)
    # Descendants born during the grace period (a worker starting a run) go down with the rest.
    alive = _unique(member for process in alive for member in tree(process))
    psutil.wait_procs(_signal(alive, signal.SIGKILL), timeout=timeout_s)


def tree(root: psutil.Process) -> list[psutil.Process]:
    """``root``, its descendants, and the processes of its session when it leads one
    (daemons that double-forked away from their parent stay in the session)."""
    try:
        members = [root, *root.children(recursive=True)]
        leads_session = os.getsid(root.pid) == root.pid
    except (psutil.NoSuchProcess, ProcessLookupError):
        return []
    if leads_session:
        members += [p for p in psutil.process_iter() if _session(p) == root.pid]
    return _unique(members)


def marked(value: str) -> list[psutil.Process]:
    """Every process of this user whose environment sets :data:`MARKER` to ``value``, except
    this process and its ancestors (a flow run may call ``flai down`` itself)."""
    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid not in spared and process.environ().get(MARKER) == value:
                found.append(process)
        except psutil.Error:  # gone, or another user's
            continue
    return found


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} ({process.name()})"
    except psutil.Error:
        return str(process.pid)


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


def accepts(address: str | None) -> bool:
    """Whether something accepts TCP connections at ``host:port`` (or a URL) on loopback."""
    port = port_of(address) if address else None
    if port is None:
        return False
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def tool(name: str) -> str | None:
    """A console script of this environment (next to its python), else one on PATH."""
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() else shutil.which(name)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie; an exited child of this process is reaped on the way, or it
    would stay a zombie for as long as this process lives."""
    if isinstance(process, psutil.Popen):
        return process.poll() is None  # reaps it and keeps its exit status
    try:
        if process.status() != psutil.STATUS_ZOMBIE:
            return process.is_running()
    except psutil.NoSuchProcess:
        return False
    try:
        os.waitpid(process.pid, os.WNOHANG)
    except ChildProcessError:  # another process's zombie: its parent reaps it
        pass
    return False


def _exit_code(process: psutil.Process) -> int | None:
    """The exit status of a process this one started, once reaped; None for any other."""
    return process.poll() if isinstance(process, psutil.Popen) else None


def _session(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


def _signal(processes: Iterable[psutil.Process], sig: signal.Signals) -> list[psutil.Process]:
    """Sends ``sig`` to each process; returns those that were still there to receive it."""
    reached = []
    for process in processes:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            continue
        reached.append(process)
    return reached


def _unique(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    return list({process.pid: process for process in processes}.values())
