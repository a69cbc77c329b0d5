"""``flai up --ray``: a Ray head that ``actors.federation.connect`` joins through
``FLAI_RAY_ADDRESS``, whose custom resources pin work to an organisation's node, with the
heart federation's actors kept up on it for the CLI to attach to."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
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

# The session the heart federation's aggregator keeps open, read on the head.
SESSION = """
import ray
from actors.federation import connect
connect()
aggregator = ray.get_actor("heart-4/aggregator")
print(ray.get(aggregator.__ray_call__.remote(lambda a: a._session and a._session.session_id)))
"""
QUERY = ["query", "SELECT sex, COUNT(*) AS n FROM heart GROUP BY sex", "--format", "json"]


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
        assert "federations heart-4" in reports["ray-head"].detail

        # The CLI, given nothing but the data directory, attaches to the stack and its
        # federation; two queries share the federation's MPC session.
        cli_env = {**_base_env(), "FLAI_DATA_DIR": str(config.data_dir)}
        sessions = []
        for _ in range(2):
            answered = subprocess.run([sys.executable, "-m", "cli", *QUERY], env=cli_env,
                                      capture_output=True, text=True, timeout=300)
            assert answered.returncode == 0, answered.stdout + answered.stderr
            assert json.loads(answered.stdout)["rows"]
            read = subprocess.run([sys.executable, "-c", SESSION], env={**_base_env(), **env},
                                  capture_output=True, text=True, timeout=120)
            sessions.append(read.stdout.strip().splitlines()[-1])
        assert sessions[0] != "None" and sessions[0] == sessions[1]
        with httpx.Client(base_url=config.api_url) as client:
            runs = client.post("/flow_runs/filter", json={}).json()
        assert sum(run["name"] == "query-heart-4" for run in runs) == 2, "the stack's server ran both"
    finally:
        down = {r.name: r.action for r in stack.down(config.data_dir)}
    assert down["ray-head"] is Action.STOPPED
    assert {r.name: r.action for r in stack.status(config)}["ray-head"] is Action.STOPPED
    assert port_free(ray_port)  # the head's whole process group is gone, not only its leader


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
