"""Helpers for tests that start a real local stack."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from flai.stack import StackConfig


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on now (held open together while chosen)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


@contextmanager
def prefect_api(config: StackConfig) -> Iterator[None]:
    """Prefect clients of this process talk to the stack's server inside the block only."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: config.api_url}):
        yield


def cli_env(config: StackConfig, home: Path) -> dict[str, str]:
    """What a shell has after ``source <data_dir>/stack/env``: this process's environment
    without its Prefect settings, plus the stack's (and a Prefect home of its own)."""
    from deployments import stack

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | stack.client_env(config) | {"PREFECT_HOME": str(home)}


@contextmanager
def flai_settings(config: StackConfig) -> Iterator[None]:
    """FLAI's settings of this process (chain, data directory, IPFS) are the stack's inside the
    block only, as a shell's after ``source <data_dir>/stack/env``."""
    from deployments import stack
    from flai.settings import get_settings

    env = {k: v for k, v in stack.client_env(config).items() if k.startswith("FLAI_")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
