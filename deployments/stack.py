"""The local FLAI stack: ``flai up`` / ``down`` / ``status``.

The parts, all on 127.0.0.1: the Prefect server and its UI (database under
``<data_dir>/prefect``), the ``flai-process`` work pool and a worker polling it, anvil with
its chain kept in ``<data_dir>/chain`` and FLAI's contracts deployed there once, the IPFS
daemon when ``ipfs_api`` names a loopback address, and a Ray head on request.

``up`` starts what is not running and reports what already was, so it can be repeated;
``down`` stops everything and keeps every part's state on disk, so the next ``up`` finds
the same flow runs, chain and lineage. Pid files, addresses and logs live under
``<data_dir>/stack`` (anvil's, shared with ``flai chain``, under ``<data_dir>/chain``);
``up`` writes ``<data_dir>/stack/env`` for ``source``.

Flow runs are never left holding a deployment's concurrency slot: ``down`` refuses while runs
are active unless forced, and then cancels them once their processes are gone; ``up`` ends
the runs this stack's worker started whose process is gone (an unclean stop, a killed
worker). Every process of the stack carries the stack's marker in its environment
(:data:`deployments.processes.MARKER`), and so do their children, Ray's daemons included:
``down`` stops whatever still carries it once the parts are stopped.

On a machine that may reach nothing but loopback, run the stack and everything that talks to
it inside one network namespace (``scripts/loopback-only``): two namespaces are two
different loopbacks.

    config = StackConfig.from_settings(get_settings())
    up(config)          # -> a ComponentReport per part: started / already running / off
    down(config.data_dir)                # StackBusyError while flow runs are active
    down(config.data_dir, force=True)    # cancels them first
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import psutil

from deployments import anvil, federations, ipfs, processes, runs
from deployments.attach import SERVER
from deployments.processes import Managed, ProcessError, ProcessStartError, accepts, port_free, port_of
from flai.settings import Settings
from flai.stack import (
    HOST,
    PROJECT_DIR,
    Action,
    ComponentReport,
    FlowRunRef,
    StackAlreadyRunningError,
    StackBusyError,
    StackConfig,
    StackConfigError,
    StackPortInUseError,
    StackStartError,
    StackToolMissingError,
    StackUnhealthyError,
)

WORK_POOL = "flai-process"
SERVER_READY_TIMEOUT_S = 180.0  # the first start migrates the database; slow on a busy box
WORKER_READY_TIMEOUT_S = 90.0
WORKER_POLL_S = 2  # how often the worker asks for runs to start (Prefect's default: 10 s)
RAY_READY_TIMEOUT_S = 120.0

WORKER = "prefect-worker"
ANVIL = anvil.NODE
IPFS = "ipfs"  # also the name of its repository under the stack directory
RAY_HEAD = "ray-head"
LEFTOVERS = "leftovers"  # processes that carried the stack's marker after every part stopped
ORDER = (SERVER, WORKER, ANVIL, IPFS, RAY_HEAD)  # how reports are listed


def up(config: StackConfig, on_step: Callable[[str], None] = lambda _: None) -> list[ComponentReport]:
    """Start every configured part that is not running, and report on each.

    Ports are checked before anything starts (:class:`~flai.stack.StackPortInUseError`).
    When a part fails, the parts this call started are stopped again and
    :class:`~flai.stack.StackStartError` says why. Before a worker starts, the runs an
    earlier worker of this stack left active without a process are ended (reported in the
    server's detail). ``on_step`` hears each slow step.
    """
    current = {report.name: report for report in status(config)}
    running = {name for name, report in current.items() if report.action is Action.RUNNING}
    _check_before_start(config, current)
    started: list[str] = []
    details = {SERVER: f"UI {config.ui_url}", IPFS: f"repo {config.stack_dir / IPFS}"}
    try:
        server = None
        if SERVER not in running:  # the slowest part: start it first, wait for it last
            on_step("starting the Prefect server")
            server = _spawn_server(config)
            started.append(SERVER)
        if ANVIL not in running:
            on_step("starting anvil")
            anvil.start(config.data_dir / "chain", config.anvil_port, env=_process_env(config, {}))
            started.append(ANVIL)
        on_step("deploying or attaching FLAI's contracts")
        details[ANVIL] = _contracts(config)
        if config.ipfs_port is not None and IPFS not in running:
            on_step("starting the IPFS daemon")
            started.append(IPFS)
            _start_ipfs(config)
        if config.ray and RAY_HEAD not in running:
            on_step("starting a Ray head")
            started.append(RAY_HEAD)
            _start_ray_head(config)
        if config.ray:
            on_step("starting the federations' actors")
            started_federations = federations.start(config, client_env(config))
            details[RAY_HEAD] = (f"resources {json.dumps(dict(config.ray_resources))}; "
                                 f"federations {', '.join(started_federations) or 'none'}")
        if server is not None:
            on_step("waiting for the Prefect API")
            _part(config.stack_dir, SERVER).wait_ready(
                server, lambda: _server_answers(config.ui_url), SERVER_READY_TIMEOUT_S,
                f"no answer at {config.api_url}/health")
        details[WORKER] = _ensure_work_pool(config)
        on_step("ending flow runs whose process is gone")
        details[SERVER] += _orphans_detail(runs.end_orphans(
            config.api_url, _worker_name(config.data_dir), _marker(config.data_dir),
            worker_alive=WORKER in running))
        if WORKER not in running:
            on_step(f"starting a worker for {WORK_POOL}")
            started.append(WORKER)
            worker = _spawn_worker(config)
            _part(config.stack_dir, WORKER).wait_ready(
                worker, lambda: _worker_online(config), WORKER_READY_TIMEOUT_S,
                f"no heartbeat in pool {WORK_POOL}")
    except BaseException as error:
        for name in reversed(started):
            _stop(config.data_dir, name)
        if isinstance(error, ProcessError):
            raise _start_error(error) from error
        raise
    write_env_file(config)
    return [
        ComponentReport(r.name, Action.STARTED if r.name in started else Action.ALREADY_RUNNING,
                        r.pid, r.address, r.log_file, details.get(r.name, r.detail))
        if r.action is Action.RUNNING else r
        for r in status(config)
    ]


def down(data_dir: Path, *, force: bool = False) -> list[ComponentReport]:
    """Stop every part that runs for ``data_dir``, clients first; all state stays on disk.

    Flow runs active on the stack's server make it raise :class:`~flai.stack.StackBusyError`
    and stop nothing, unless ``force``: then the worker and every run's process are stopped
    first and the runs set Cancelled. Runs of deployments tagged ``interruptible`` (the
    governance sync, every 5 minutes, safe to re-run) are stopped and cancelled so, unforced. Processes that still carry the stack's marker once the
    parts are stopped (a run's Ray, orphaned) are stopped too, and reported as leftovers.
    """
    api_url = _api_url(data_dir)
    active, interruptible = runs.active(api_url) if api_url else ([], [])
    if active and not force:
        raise StackBusyError(active)
    stopped = {WORKER: _stop(data_dir, WORKER)}  # and the runs' processes, its descendants
    active += interruptible
    if active:
        runs.cancel(api_url, active)
    stopped |= {name: _stop(data_dir, name) for name in (SERVER, RAY_HEAD, IPFS, ANVIL)}
    leftovers = processes.marked(_marker(data_dir))
    described = ", ".join(processes.describe(process) for process in leftovers)
    processes.stop_all(leftovers)
    (data_dir / "stack" / "env").unlink(missing_ok=True)
    details = {WORKER: "cancelled " + ", ".join(f"{run.name} ({run.id})" for run in active)
               if active else ""}
    reports = [ComponentReport(name, Action.STOPPED if stopped[name] else Action.NOT_RUNNING,
                               detail=details.get(name, "")) for name in ORDER]
    if leftovers:
        reports.append(ComponentReport(LEFTOVERS, Action.STOPPED, detail=described))
    return reports


def status(config: StackConfig) -> list[ComponentReport]:
    """Each part: RUNNING (alive and answering), STOPPED, or OFF (not configured, not running).

    A part whose process is alive but does not answer is STOPPED with a detail saying so.
    """
    probes = {SERVER: _server_answers, WORKER: lambda _: True, IPFS: ipfs.answers,
              RAY_HEAD: accepts}
    configured = {IPFS: config.ipfs_port is not None, RAY_HEAD: config.ray}
    reports = {}
    for name, probe in probes.items():
        part = _part(config.stack_dir, name)
        process, address = part.process(), part.address()
        if process is not None and probe(address):
            action, detail = Action.RUNNING, ""
        elif process is not None:
            action, detail = Action.STOPPED, "process alive but not answering"
        else:
            action = Action.STOPPED if configured.get(name, True) else Action.OFF
            detail, address = "", None
        reports[name] = ComponentReport(name, action, process.pid if process else None, address,
                                        part.log_file, detail)
    chain = anvil.status(config.data_dir / "chain")
    reports[ANVIL] = ComponentReport(ANVIL, Action.RUNNING if chain.running else Action.STOPPED,
                                     chain.pid, chain.url, chain.log_file,
                                     f"chain state {chain.state_file}")
    return [reports[name] for name in ORDER]


def client_env(config: StackConfig) -> dict[str, str]:
    """What a shell needs to use the stack; the worker, and so every flow run, gets it too.

    ``FLAI_PROJECT_DIR`` is where ``prefect.yaml``'s pull step finds the flows' code.
    """
    env = {
        "PREFECT_API_URL": config.api_url,
        "FLAI_DATA_DIR": str(config.data_dir),
        "FLAI_CHAIN_URL": config.chain_url,
        "FLAI_PROJECT_DIR": str(PROJECT_DIR),
    }
    if config.ipfs_api:
        env["FLAI_IPFS_API"] = config.ipfs_api
    if config.ray_address:
        env["FLAI_RAY_ADDRESS"] = config.ray_address
        # Ray 2.60 authenticates clients of a cluster with a token: this stack's own.
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN_PATH"] = str(_ray_token_file(config))
    return env


def write_env_file(config: StackConfig) -> Path:
    """``<data_dir>/stack/env``: ``source`` it to point a shell's clients at the stack."""
    path = config.stack_dir / "env"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in client_env(config).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- checks before anything starts ---------------------------------------------------------


def _wanted_ports(config: StackConfig) -> dict[str, int]:
    wanted = {SERVER: config.prefect_port, ANVIL: config.anvil_port}
    if config.ipfs_port is not None:
        wanted[IPFS] = config.ipfs_port
    if config.ray:
        wanted[RAY_HEAD] = config.ray_port
    for name, port in wanted.items():
        if not 0 < port < 65536:
            raise StackConfigError(f"{name} port", port, "a TCP port, 1-65535")
    if len(set(wanted.values())) < len(wanted):
        raise StackConfigError("ports", wanted, "a different port for each part")
    return wanted


def _check_before_start(config: StackConfig, current: Mapping[str, ComponentReport]) -> None:
    """Running parts must sit where the config puts them; the other parts' ports must be free."""
    wanted = _wanted_ports(config)
    for name, report in current.items():
        if report.action is Action.STOPPED and report.pid is not None:
            raise StackUnhealthyError(name, report.pid, report.log_file)
        if (report.action is Action.RUNNING and name in wanted and report.address
                and port_of(report.address) != wanted[name]):
            raise StackAlreadyRunningError(name, report.address, wanted[name])
    taken = {name: port for name, port in wanted.items()
             if current[name].action is not Action.RUNNING and not port_free(port)}
    if taken:
        raise StackPortInUseError(taken)


# -- the parts -----------------------------------------------------------------------------


def _part(stack_dir: Path, name: str) -> Managed:
    """A part other than anvil, whose files live with the chain (``deployments.anvil``)."""
    return ipfs.process(stack_dir / IPFS) if name == IPFS else Managed(name, stack_dir)


def _marker(data_dir: Path) -> str:
    return str(data_dir)


def _process_env(config: StackConfig, extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its Prefect and stack settings, plus the stack's
    and its marker."""
    replaced = {"FLAI_DATA_DIR", "FLAI_CHAIN_URL", "FLAI_IPFS_API", "FLAI_RAY_ADDRESS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in replaced}
    env |= {
        "PREFECT_HOME": str(config.data_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "RAY_USAGE_STATS_ENABLED": "0",
        "DO_NOT_TRACK": "1",
        processes.MARKER: _marker(config.data_dir),
    }
    return env | dict(extra)


def _tool(name: str) -> str:
    found = processes.tool(name)
    if found is None:
        raise StackToolMissingError(name, "install FLAI's Python environment (make env)")
    return found


def _start_error(error: ProcessError) -> StackStartError:
    if isinstance(error, ProcessStartError):
        return StackStartError(error.name, error.reason, error.log_file, error.log_tail)
    return StackStartError(error.name, str(error))


def _spawn_server(config: StackConfig) -> psutil.Popen:
    (config.data_dir / "prefect").mkdir(parents=True, exist_ok=True)
    env = _process_env(config, {
        "PREFECT_SERVER_API_HOST": HOST,
        "PREFECT_SERVER_API_PORT": str(config.prefect_port),
        "PREFECT_UI_API_URL": config.api_url,  # what the UI's code in the browser calls
        "PREFECT_API_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{config.data_dir / 'prefect' / 'prefect.db'}",
    })
    argv = [_tool("prefect"), "server", "start", "--host", HOST,
            "--port", str(config.prefect_port), "--analytics-off"]
    return _part(config.stack_dir, SERVER).start(argv, env=env, address=config.ui_url, cwd=PROJECT_DIR)


def _server_answers(ui_url: str | None) -> bool:
    if ui_url is None:
        return False
    try:
        with httpx.Client(timeout=2.0, trust_env=False) as client:  # loopback: never a proxy
            return client.get(f"{ui_url}/api/health").json() is True
    except (httpx.HTTPError, ValueError):  # not listening yet, or a half-started server's reply
        return False


def _api_url(data_dir: Path) -> str | None:
    """The API of the stack's server if it runs and answers."""
    server = _part(data_dir / "stack", SERVER)
    ui_url = server.address() if server.process() is not None else None
    return f"{ui_url}/api" if _server_answers(ui_url) else None


def _ensure_work_pool(config: StackConfig) -> str:
    """Creates the process work pool unless it exists; says which happened."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    pool = WorkPoolCreate(name=WORK_POOL, type=ProcessWorker.type,
                          base_job_template=ProcessWorker.get_default_base_job_template())
    with SyncPrefectClient(config.api_url) as client:
        try:
            client.create_work_pool(pool)
        except ObjectAlreadyExists:
            return f"pool {WORK_POOL}"
    return f"pool {WORK_POOL} (created)"


def _orphans_detail(ended: list[FlowRunRef]) -> str:
    if not ended:
        return ""
    return f"; ended {len(ended)} run(s) whose process was gone: " + ", ".join(
        f"{run.name} ({run.id})" for run in ended)


def _worker_name(data_dir: Path) -> str:
    """Also the label of every run this worker starts (how ``up`` knows them)."""
    return f"flai-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:8]}"


def _spawn_worker(config: StackConfig) -> psutil.Popen:
    argv = [_tool("prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process",
            "--name", _worker_name(config.data_dir), "--install-policy", "never",
            "--no-create-pool-if-not-found"]
    env = _process_env(config, {**client_env(config), "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_POLL_S)})
    return _part(config.stack_dir, WORKER).start(argv, env=env, address=f"pool {WORK_POOL}",
                                                 cwd=PROJECT_DIR)


def _worker_online(config: StackConfig) -> bool:
    """Whether this stack's worker has sent a heartbeat to the pool."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(config.api_url) as client:
        workers = client.read_workers_for_work_pool(WORK_POOL)
    return any(w.name == _worker_name(config.data_dir) and w.status.value == "ONLINE"
               for w in workers)


def _contracts(config: StackConfig) -> str:
    """Deploys FLAI's contracts on the stack's anvil once; later calls attach to them.

    The deployment is written to the chain's state file before ``up`` goes on: this process's
    Ledger writes it only when its settings name the stack's data directory, and a manifest
    whose contracts a crash lost would stop every later ``up``.
    """
    from contracts.anvil import LocalNode
    from contracts.errors import LedgerError
    from contracts.ledger import Ledger

    settings = Settings(data_dir=config.data_dir, chain_url=config.chain_url)
    try:
        ledger = Ledger.from_settings(settings)
        LocalNode(config.data_dir / "chain", config.chain_url).persist(ledger.chain.web3)
    except LedgerError as error:
        raise StackStartError(ANVIL, f"FLAI's contracts: {error}") from error
    return f"contracts since block {ledger.manifest.deployment_block}"


def _start_ipfs(config: StackConfig) -> None:
    from flai.storage import StorageError

    try:
        ipfs.start(config.stack_dir / IPFS, config.ipfs_port, env=_process_env(config, {}))
    except StorageError as error:
        raise StackStartError(IPFS, str(error)) from error


def _ray_temp_dir(config: StackConfig) -> Path:
    """Short (Ray's socket paths must fit in 107 bytes) and private to this data directory,
    so the head's address file never makes another process's ``ray.init()`` join it."""
    digest = hashlib.sha256(str(config.data_dir).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"flai-ray-{digest}"


def _ray_token_file(config: StackConfig) -> Path:
    return config.stack_dir / "ray-auth-token"


def _ensure_ray_token(config: StackConfig) -> None:
    """The head's and its clients' shared secret, readable by this user only; a node on
    another machine joins with the same token (``RAY_AUTH_TOKEN``)."""
    path = _ray_token_file(config)
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as token:
        token.write(secrets.token_hex(32))  # what `ray get-auth-token --generate` writes


def _start_ray_head(config: StackConfig) -> None:
    _ensure_ray_token(config)
    argv = [_tool("ray"), "start", "--head", "--block", "--port", str(config.ray_port),
            "--node-ip-address", HOST, "--include-dashboard=false", "--disable-usage-stats",
            "--temp-dir", str(_ray_temp_dir(config))]
    if config.ray_resources:
        argv += ["--resources", json.dumps(dict(config.ray_resources))]
    env = _process_env(config, {name: value for name, value in client_env(config).items()
                                if name.startswith("RAY_")})
    # Ray 2.60 drains a node for 30 s on SIGTERM so Ray Serve replicas can quiesce; FLAI
    # runs no Serve, and `flai down` should not wait for nothing.
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    head = _part(config.stack_dir, RAY_HEAD)
    started = head.start(argv, env=env, address=config.ray_address, cwd=PROJECT_DIR)
    head.wait_ready(started, lambda: accepts(config.ray_address), RAY_READY_TIMEOUT_S,
                    f"nothing listens on {config.ray_address}")


def _stop(data_dir: Path, name: str) -> bool:
    if name == ANVIL:
        return anvil.stop(data_dir / "chain")
    return _part(data_dir / "stack", name).stop()
