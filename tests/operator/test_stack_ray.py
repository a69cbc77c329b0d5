"""``flai up --ray``: a Ray head that ``actors.federation.connect`` joins through
``FLAI_RAY_ADDRESS``, whose custom resources pin work to an organisation's node."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deployments import stack
from deployments.processes import port_free
from flai.stack import Action, StackConfig
from tests.operator.support import free_ports

# Runs in a process of its own: this session's Ray (the ray_cluster fixture) must not be it.
JOIN = """
import ray
from actors.federation import connect
connect()
assert ray.cluster_resources().get("org:cleveland") == 1.0, ray.cluster_resources()

@ray.remote(num_cpus=0, resources={"org:cleveland": 0.001})
def where() -> str:
    return ray.get_runtime_context().get_node_id()

print("pinned to", ray.get(where.remote(), timeout=60), "of", len(ray.nodes()), "node(s)")
"""


@pytest.mark.slow
def test_up_with_ray_starts_a_head_that_connect_joins(tmp_path) -> None:
    prefect_port, anvil_port, ray_port = free_ports(3)
    config = StackConfig(tmp_path / "data", prefect_port=prefect_port, anvil_port=anvil_port,
                         ray=True, ray_port=ray_port, ray_resources={"org:cleveland": 1})
    try:
        reports = {r.name: r for r in stack.up(config)}
        assert reports["ray-head"].action is Action.STARTED
        assert reports["ray-head"].address == f"127.0.0.1:{ray_port}"
        env_file = (config.data_dir / "stack" / "env").read_text()
        assert f"export FLAI_RAY_ADDRESS=127.0.0.1:{ray_port}" in env_file
        env = stack.client_env(config)
        joined = subprocess.run([sys.executable, "-c", JOIN], env={**_base_env(), **env},
                                capture_output=True, text=True, timeout=300)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert "pinned to" in joined.stdout and "of 1 node(s)" in joined.stdout
    finally:
        down = {r.name: r.action for r in stack.down(config.data_dir)}
    assert down["ray-head"] is Action.STOPPED
    assert {r.name: r.action for r in stack.status(config)}["ray-head"] is Action.STOPPED
    assert port_free(ray_port)  # the head's whole process group is gone, not only its leader


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
