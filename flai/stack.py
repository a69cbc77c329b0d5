"""The local stack's configuration, reports and errors: what ``flai up`` / ``down`` /
``status`` take and give back. Starting and stopping processes is ``deployments/``'s
(``deployments/stack.py``, on ``deployments/processes.py``); the core only describes it.

    >>> config = StackConfig(Path("/srv/flai"), prefect_port=4300, ipfs_api="http://127.0.0.1:5101")
    >>> config.api_url, config.ipfs_port, config.ray_address
    ('http://127.0.0.1:4300/api', 5101, None)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from flai.settings import Settings

HOST = "127.0.0.1"
DEFAULT_PREFECT_PORT = 4200
DEFAULT_RAY_PORT = 6379
PROJECT_DIR = Path(__file__).resolve().parents[1]  # where prefect.yaml and the flows live
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

    def __init__(self, component: str, reason: str, log_file: Path | None = None,
                 log_tail: str = "") -> None:
        where = f"\nlast lines of {log_file}:\n{log_tail}" if log_file else ""
        super().__init__(f"{component} did not start: {reason}{where}")
        self.component = component
        self.reason = reason
        self.log_file = log_file
        self.log_tail = log_tail


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


@dataclass(frozen=True)
class FlowRunRef:
    """A flow run of the stack's Prefect server, as ``down`` and ``up`` report it."""

    id: str
    name: str
    state: str  # the state's name: "Running", "Pending", "Late", "Cancelling", ...


class StackBusyError(StackError):
    """``down`` found flow runs active on the stack's server and stopped nothing."""

    def __init__(self, runs: Sequence[FlowRunRef]) -> None:
        listing = ", ".join(f"{run.name} ({run.state}, {run.id})" for run in runs)
        super().__init__(f"{len(runs)} flow run(s) active: {listing}. Nothing was stopped: wait "
                         "for them to finish, or `flai down --force` to cancel them")
        self.runs = tuple(runs)


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
    its ``ray_resources`` (e.g. ``{"org:cleveland": 1}``) let provider actors be pinned to it,
    and the demo federations of ``federations`` (data set names) start on it and stay up.
    """

    data_dir: Path
    prefect_port: int = DEFAULT_PREFECT_PORT
    anvil_port: int = 8545
    ipfs_api: str | None = None
    ray: bool = False
    ray_port: int = DEFAULT_RAY_PORT
    ray_resources: Mapping[str, float] = field(default_factory=dict)
    federations: tuple[str, ...] = ("heart",)

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
