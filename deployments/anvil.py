"""A local anvil node (a real JSON-RPC EVM) whose chain survives restarts and crashes.

The binary comes from the npm package ``@foundry-rs/anvil`` (``npm ci --prefix contracts``
installs it under ``contracts/node_modules``). It listens on 127.0.0.1 only and keeps its
chain in ``<chain_dir>/anvil-state.json``, next to its pid, URL and log files. It reads that
file when it starts and never writes it itself: the clients that send it transactions do,
after each one (:mod:`contracts.anvil` says why), and ``stop`` does once more before the node
exits, for what other clients sent. Starting a running node and stopping a stopped one are
no-ops, so ``flai chain up`` / ``down`` can be repeated.

    url = start(chain_dir, 8545)   # "http://127.0.0.1:8545"
    status(chain_dir).running      # True
    stop(chain_dir)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from web3 import HTTPProvider, Web3

from contracts.anvil import NODE, STATE_FILE, LocalNode
from deployments.processes import HOST, Managed, PortInUseError, ProcessError, port_free

NODE_MODULES = Path(__file__).resolve().parents[1] / "contracts" / "node_modules"
_PLATFORMS = {"linux": "linux", "darwin": "darwin"}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
STATES_KEPT = 128
"""Recent blocks whose state anvil keeps, in memory only (``--prune-history``)."""
STATES_DIR = "states"
"""Where, under the chain's directory, anvil would write states it persists (none, pruned)."""


class AnvilNotInstalledError(ProcessError):
    def __init__(self, path: Path) -> None:
        super().__init__(NODE, f"anvil binary not found at {path}: run `npm ci --prefix contracts` "
                               "to install it")
        self.path = path


class AnvilAlreadyRunningError(ProcessError):
    def __init__(self, chain_dir: Path, url: str) -> None:
        super().__init__(NODE, f"anvil for {chain_dir} already runs at {url}: stop it first to "
                               "change its port")
        self.chain_dir = chain_dir
        self.url = url


@dataclass(frozen=True)
class AnvilStatus:
    """What ``chain_dir`` says about its node: ``running`` means alive and answering JSON-RPC."""

    running: bool
    pid: int | None
    url: str | None
    state_file: Path
    log_file: Path


def process(chain_dir: Path) -> Managed:
    """The node of ``chain_dir`` as a managed process (its pid, URL and log files)."""
    return Managed(NODE, Path(chain_dir))


def binary_path(node_modules: Path = NODE_MODULES) -> Path:
    """The anvil binary of this platform inside ``node_modules`` (raises if it is not there)."""
    system = _PLATFORMS.get(sys.platform)
    arch = _ARCHES.get(platform.machine().lower())
    binary = node_modules / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if system is None or arch is None or not binary.is_file():
        raise AnvilNotInstalledError(binary)
    return binary


def start(chain_dir: Path, port: int = 8545, *, timeout_s: float = 10.0,
          env: Mapping[str, str] | None = None) -> str:
    """Starts anvil for ``chain_dir`` on 127.0.0.1:``port``, its chain loaded from the state
    file if there is one, and returns its URL once it answers. Returns at once if it already
    runs there; a node that is alive but does not answer is stopped and started again.
    """
    chain_dir = Path(chain_dir)
    url = f"http://{HOST}:{port}"
    current = status(chain_dir)
    if current.running:
        if current.url == url:
            return url
        raise AnvilAlreadyRunningError(chain_dir, current.url)
    node = process(chain_dir)
    node.stop(timeout_s)
    # By default anvil keeps every block's state, the older ones written under ~/.foundry: the
    # blocks a governance vote mines left gigabytes there. FLAI reads the latest state only
    # (and the block a failed transaction ended in).
    argv = [str(binary_path()), "--host", HOST, "--port", str(port),
            "--prune-history", str(STATES_KEPT), "--cache-path", str(chain_dir / STATES_DIR)]
    if not port_free(port):
        raise PortInUseError(NODE, port)
    state_file = chain_dir / STATE_FILE
    if state_file.is_file():  # anvil refuses to start from a file that does not exist
        argv += ["--load-state", str(state_file)]
    started = node.start(argv, env=os.environ if env is None else env, address=url)
    node.wait_ready(started, lambda: _answers(url), timeout_s, f"no JSON-RPC answer at {url}")
    return url


def stop(chain_dir: Path, *, timeout_s: float = 10.0) -> bool:
    """Writes the chain to the state file, then stops the node; False if none ran."""

    node = process(chain_dir)
    url = node.address()
    if node.process() is not None and url is not None and _answers(url):
        try:
            LocalNode(Path(chain_dir), url).persist(Web3(HTTPProvider(url)))
        except OSError:  # it died meanwhile, or the disk refused: the last state written stands
            pass
    return node.stop(timeout_s)


def status(chain_dir: Path) -> AnvilStatus:
    node = process(chain_dir)
    running = node.process()
    url = node.address() if running else None
    return AnvilStatus(
        running=url is not None and _answers(url),
        pid=running.pid if running else None,
        url=url,
        state_file=Path(chain_dir) / STATE_FILE,
        log_file=node.log_file,
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
