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

On a machine that may reach nothing but loopback, run the stack and everything that talks to
it inside one network namespace (``scripts/loopback-only``): two namespaces are two
different loopbacks.

    config = StackConfig.from_settings(get_settings())
    up(config)          # -> a ComponentReport per part: started / already running / off
    down(config.data_dir)
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from flai.settings import Settings
from flai.stack import (
    HOST,
    PROJECT_DIR,
    Action,
    ComponentReport,
    Managed,
    StackAlreadyRunningError,
    StackConfig,
    StackConfigError,
    StackPortInUseError,
    StackStartError,
    StackUnhealthyError,
    accepts,
    http_client,
    port_free,
    port_of,
    terminate,
    tool,
)

WORK_POOL = "flai-process"
SERVER_READY_TIMEOUT_S = 180.0  # the first start migrates the database; slow on a busy box
WORKER_READY_TIMEOUT_S = 90.0
RAY_READY_TIMEOUT_S = 120.0

SERVER = Managed("prefect-server", ("prefect", "server", "start"))
WORKER = Managed("prefect-worker", ("prefect", "worker", "start"))
IPFS = Managed("ipfs", ("ipfs",))  # js-ipfs sets its process title to "ipfs"
RAY_HEAD = Managed("ray-head", ("ray", "start", "--head"))
ANVIL = "anvil"
ORDER = (SERVER.name, WORKER.name, ANVIL, IPFS.name, RAY_HEAD.name)  # how reports are listed


def up(config: StackConfig, on_step: Callable[[str], None] = lambda _: None) -> list[ComponentReport]:
    """Start every configured part that is not running, and report on each.

    Ports are checked before anything starts (:class:`~flai.stack.StackPortInUseError`).
    When a part fails, the parts this call started are stopped again and
    :class:`~flai.stack.StackStartError` says why. ``on_step`` hears each slow step.
    """
    current = {report.name: report for report in status(config)}
    running = {name for name, report in current.items() if report.action is Action.RUNNING}
    _check_before_start(config, current)
    started: list[str] = []
    spawned: list[subprocess.Popen] = []  # stopped through these handles should `up` fail
    details = {SERVER.name: f"UI {config.ui_url}", IPFS.name: f"repo {config.stack_dir / 'ipfs'}"}
    try:
        server = None
        if SERVER.name not in running:  # the slowest part: start it first, wait for it last
            on_step("starting the Prefect server")
            server = _spawn_server(config)
            spawned.append(server)
            started.append(SERVER.name)
        if ANVIL not in running:
            on_step("starting anvil")
            _start_anvil(config)
            started.append(ANVIL)
        on_step("deploying or attaching FLAI's contracts")
        details[ANVIL] = _contracts(config)
        if config.ipfs_port is not None and IPFS.name not in running:
            on_step("starting the IPFS daemon")
            _start_ipfs(config)
            started.append(IPFS.name)
        if config.ray and RAY_HEAD.name not in running:
            on_step("starting a Ray head")
            started.append(RAY_HEAD.name)
            _start_ray_head(config, spawned)
        if config.ray:
            details[RAY_HEAD.name] = f"resources {json.dumps(dict(config.ray_resources))}"
        if server is not None:
            on_step("waiting for the Prefect API")
            SERVER.wait_until(server, config.stack_dir, lambda: _server_answers(config.ui_url),
                              SERVER_READY_TIMEOUT_S, f"no answer at {config.api_url}/health")
        details[WORKER.name] = _ensure_work_pool(config)
        if WORKER.name not in running:
            on_step(f"starting a worker for {WORK_POOL}")
            worker = _spawn_worker(config)
            spawned.append(worker)
            started.append(WORKER.name)
            WORKER.wait_until(worker, config.stack_dir, lambda: _worker_online(config),
                              WORKER_READY_TIMEOUT_S, f"no heartbeat in pool {WORK_POOL}")
    except BaseException:
        for process in reversed(spawned):
            terminate(process.pid)
            process.wait()
        for name in reversed(started):
            _stop(config.data_dir, name)
        raise
    write_env_file(config)
    return [
        ComponentReport(r.name, Action.STARTED if r.name in started else Action.ALREADY_RUNNING,
                        r.pid, r.address, r.log_file, details.get(r.name, r.detail))
        if r.action is Action.RUNNING else r
        for r in status(config)
    ]


def down(data_dir: Path) -> list[ComponentReport]:
    """Stop every part that runs for ``data_dir``, clients first; all state stays on disk."""
    stopped = {name: _stop(data_dir, name)
               for name in (WORKER.name, SERVER.name, RAY_HEAD.name, IPFS.name, ANVIL)}
    (data_dir / "stack" / "env").unlink(missing_ok=True)
    return [ComponentReport(name, Action.STOPPED if stopped[name] else Action.NOT_RUNNING)
            for name in ORDER]


def status(config: StackConfig) -> list[ComponentReport]:
    """Each part: RUNNING (alive and answering), STOPPED, or OFF (not configured, not running).

    A part whose process is alive but does not answer is STOPPED with a detail saying so.
    """
    from contracts import anvil

    probes = {SERVER.name: _server_answers, WORKER.name: lambda _: True, IPFS.name: _ipfs_answers,
              RAY_HEAD.name: accepts}
    configured = {IPFS.name: config.ipfs_port is not None, RAY_HEAD.name: config.ray}
    reports = {}
    for part in (SERVER, WORKER, IPFS, RAY_HEAD):
        pid, address = part.pid(config.stack_dir), part.address(config.stack_dir)
        if pid is not None and probes[part.name](address):
            action, detail = Action.RUNNING, ""
        elif pid is not None:
            action, detail = Action.STOPPED, "process alive but not answering"
        else:
            action = Action.STOPPED if configured.get(part.name, True) else Action.OFF
            detail, address = "", None
        reports[part.name] = ComponentReport(part.name, action, pid, address,
                                             part.log_file(config.stack_dir), detail)
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
    wanted = {SERVER.name: config.prefect_port, ANVIL: config.anvil_port}
    if config.ipfs_port is not None:
        wanted[IPFS.name] = config.ipfs_port
    if config.ray:
        wanted[RAY_HEAD.name] = config.ray_port
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


def _process_env(config: StackConfig, extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its Prefect and stack settings, plus the stack's."""
    replaced = {"FLAI_DATA_DIR", "FLAI_CHAIN_URL", "FLAI_IPFS_API", "FLAI_RAY_ADDRESS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in replaced}
    env |= {
        "PREFECT_HOME": str(config.data_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "RAY_USAGE_STATS_ENABLED": "0",
        "DO_NOT_TRACK": "1",
    }
    return env | dict(extra)


def _spawn_server(config: StackConfig) -> subprocess.Popen:
    (config.data_dir / "prefect").mkdir(parents=True, exist_ok=True)
    env = _process_env(config, {
        "PREFECT_SERVER_API_HOST": HOST,
        "PREFECT_SERVER_API_PORT": str(config.prefect_port),
        "PREFECT_UI_API_URL": config.api_url,  # what the UI's code in the browser calls
        "PREFECT_API_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{config.data_dir / 'prefect' / 'prefect.db'}",
    })
    argv = [tool("prefect"), "server", "start", "--host", HOST,
            "--port", str(config.prefect_port), "--analytics-off"]
    return SERVER.spawn(config.stack_dir, argv, env, config.ui_url)


def _server_answers(ui_url: str | None) -> bool:
    if ui_url is None:
        return False
    try:
        with http_client() as client:
            return client.get(f"{ui_url}/api/health").json() is True
    except (httpx.HTTPError, ValueError):  # not listening yet, or a half-started server's reply
        return False


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


def _worker_name(config: StackConfig) -> str:
    return f"flai-{hashlib.sha256(str(config.data_dir).encode()).hexdigest()[:8]}"


def _spawn_worker(config: StackConfig) -> subprocess.Popen:
    argv = [tool("prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process",
            "--name", _worker_name(config), "--install-policy", "never",
            "--no-create-pool-if-not-found"]
    return WORKER.spawn(config.stack_dir, argv, _process_env(config, client_env(config)),
                        f"pool {WORK_POOL}")


def _worker_online(config: StackConfig) -> bool:
    """Whether this stack's worker has sent a heartbeat to the pool."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(config.api_url) as client:
        workers = client.read_workers_for_work_pool(WORK_POOL)
    return any(w.name == _worker_name(config) and w.status.value == "ONLINE" for w in workers)


def _start_anvil(config: StackConfig) -> None:
    from contracts import anvil

    try:
        anvil.start(config.data_dir / "chain", config.anvil_port)
    except anvil.AnvilError as error:
        raise StackStartError(ANVIL, str(error)) from error


def _contracts(config: StackConfig) -> str:
    """Deploys FLAI's contracts on the stack's anvil once; later calls attach to them."""
    from contracts.errors import LedgerError
    from contracts.ledger import Ledger

    settings = Settings(data_dir=config.data_dir, chain_url=config.chain_url)
    try:
        manifest = Ledger.from_settings(settings).manifest
    except LedgerError as error:
        raise StackStartError(ANVIL, f"FLAI's contracts: {error}") from error
    return f"contracts since block {manifest.deployment_block}"


def _ipfs_answers(url: str | None) -> bool:
    if url is None:
        return False
    try:
        with http_client() as client:
            return client.post(f"{url}/api/v0/version").is_success
    except httpx.HTTPError:
        return False


def _start_ipfs(config: StackConfig) -> None:
    from flai.storage import StorageError, daemon

    try:
        running = daemon.start(config.stack_dir / "ipfs", config.ipfs_port)
    except StorageError as error:
        raise StackStartError(IPFS.name, str(error)) from error
    IPFS.record(config.stack_dir, running.process.pid, running.url)


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


def _start_ray_head(config: StackConfig, spawned: list[subprocess.Popen]) -> None:
    _ensure_ray_token(config)
    argv = [tool("ray"), "start", "--head", "--block", "--port", str(config.ray_port),
            "--node-ip-address", HOST, "--include-dashboard=false", "--disable-usage-stats",
            "--temp-dir", str(_ray_temp_dir(config))]
    if config.ray_resources:
        argv += ["--resources", json.dumps(dict(config.ray_resources))]
    env = _process_env(config, {name: value for name, value in client_env(config).items()
                                if name.startswith("RAY_")})
    # Ray 2.60 drains a node for 30 s on SIGTERM so Ray Serve replicas can quiesce; FLAI
    # runs no Serve, and `flai down` should not wait for nothing.
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    head = RAY_HEAD.spawn(config.stack_dir, argv, env, config.ray_address)
    spawned.append(head)
    RAY_HEAD.wait_until(head, config.stack_dir, lambda: accepts(config.ray_address),
                        RAY_READY_TIMEOUT_S, f"nothing listens on {config.ray_address}")


def _stop(data_dir: Path, name: str) -> bool:
    if name == ANVIL:
        from contracts import anvil

        return anvil.stop(data_dir / "chain")
    part = {p.name: p for p in (SERVER, WORKER, IPFS, RAY_HEAD)}[name]
    return part.stop(data_dir / "stack")
