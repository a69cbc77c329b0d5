"""Bad input is refused before any work: one line, exit code 2, and Ray never started."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flai.datasets import Dataset, Partitioning
from flai.learning.models import ModelKind
from flai.net import free_port
from flai.validation import (
    GiB,
    PreflightError,
    check_alpha,
    check_chain,
    check_data_dir,
    check_fit,
    check_ipfs,
    check_memory,
    check_provider_count,
    provider_count,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("alpha", [-1.0, 0.0, math.nan, math.inf])
def test_alpha_must_be_finite_and_positive(alpha: float) -> None:
    with pytest.raises(PreflightError, match="alpha .*: must be a finite number above 0") as refused:
        check_alpha(alpha)
    assert refused.value.name == "alpha" and refused.value.value is alpha


def test_fit_parameters() -> None:
    check_fit(0.0, 0.05, 0)
    for mu, learning_rate, seed, name in [(-1.0, 0.05, 0, "mu"), (math.inf, 0.05, 0, "mu"),
                                          (0.0, 0.0, 0, "learning_rate"), (0.0, 0.05, -1, "seed")]:
        with pytest.raises(PreflightError) as refused:
            check_fit(mu, learning_rate, seed)
        assert refused.value.name == name


def test_provider_counts() -> None:
    assert provider_count(Dataset.HEART, Partitioning()) == 4  # its hospitals
    assert provider_count(Dataset.CENSUS, Partitioning(7)) == 7
    with pytest.raises(PreflightError, match="census has no natural split"):
        provider_count(Dataset.CENSUS, Partitioning())
    check_provider_count(2, 2)
    with pytest.raises(PreflightError, match="providers 1: a round needs at least 2"):
        check_provider_count(1, 2)


def test_memory_for_the_providers() -> None:
    check_memory(30, 24 * GiB)
    with pytest.raises(PreflightError, match=r"providers 64: need about 38\.5 GiB .* 24\.0 GiB available"):
        check_memory(64, 24 * GiB)


def test_data_dir_must_be_writable(tmp_path: Path) -> None:
    check_data_dir(tmp_path / "new" / "data")
    assert (tmp_path / "new" / "data").is_dir() and not any((tmp_path / "new" / "data").iterdir())
    a_file = tmp_path / "file"
    a_file.write_bytes(b"")
    with pytest.raises(PreflightError, match="FLAI_DATA_DIR .*: not writable"):
        check_data_dir(a_file / "data")


def test_dead_chain_and_ipfs_urls_are_found_at_once() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PreflightError, match="FLAI_CHAIN_URL .*: no answer to eth_chainId"):
        check_chain(dead)
    with pytest.raises(PreflightError, match="FLAI_IPFS_API .*: no answer"):
        check_ipfs(dead)
    with pytest.raises(PreflightError, match="FLAI_CHAIN_URL"):
        check_chain("not a url")


@pytest.mark.slow
def test_live_chain_and_ipfs_pass(tmp_path: Path) -> None:
    """A real anvil node and a real js-ipfs daemon answer the checks."""
    from deployments import anvil
    from deployments.ipfs import start, stop

    url = anvil.start(tmp_path / "anvil", free_port())
    try:
        check_chain(url)
    finally:
        anvil.stop(tmp_path / "anvil")
    daemon = start(tmp_path / "ipfs", free_port())
    try:
        check_ipfs(daemon.url)
        with pytest.raises(PreflightError, match="answered eth_chainId with HTTP"):
            check_chain(daemon.url)  # something answers, but not a chain
    finally:
        stop(daemon)


def test_task_ids_made_in_the_same_second_differ() -> None:
    from cli.training import new_task_id

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = {new_task_id("heart-4", ModelKind.LOGREG, 0, now) for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("heart-4-logreg-s0-20260102T030405-") for i in ids)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"alpha": math.inf}, "alpha inf: must be a finite number above 0"),
    ({"dataset": Dataset.CENSUS, "providers": 1000}, "providers 1000: need about"),
])
def test_the_training_deployment_checks_its_parameters_first(parameters: dict, message: str) -> None:
    from deployments.training import train

    with pytest.raises(PreflightError, match=message):
        train.fn(**parameters)  # the flow's body: refused before partitions, Ray or a round


# -- the CLI, in a fresh process: every invalid parameter exits 2 with its message ---------

# Case -> (arguments, environment, the message's expected start); {dead} is a loopback URL
# nothing listens on, {file} a regular file (so {file}/data cannot be made).
CLI_CASES: dict[str, tuple[list[str], dict[str, str], str]] = {
    "negative alpha": (["train", "--alpha", "-1"], {}, "alpha -1.0: must be a finite number above 0"),
    "zero alpha": (["train", "--alpha", "0"], {}, "alpha 0.0: must be a finite number above 0"),
    "nan alpha": (["train", "--alpha", "nan"], {}, "alpha nan: must be a finite number above 0"),
    "one provider": (["train", "--providers", "1"], {}, "providers 1: a round needs at least 2"),
    "more providers than memory": (["train", "--providers", "1000"], {}, "providers 1000: need about"),
    "census demo with one provider": (["demo", "--dataset", "census", "--providers", "1"], {},
                                      "providers 1: a round needs at least 2"),
    "zero learning rate": (["train", "--learning-rate", "0"], {}, "learning_rate 0.0: must be"),
    "negative mu": (["train", "--mu", "-1"], {}, "mu -1.0: must be"),
    "negative seed": (["train", "--seed", "-1"], {}, "seed -1: must be 0 or more"),
    "dead chain": (["demo"], {"FLAI_CHAIN_URL": "{dead}"}, "FLAI_CHAIN_URL {dead}: no answer"),
    "dead ipfs": (["demo"], {"FLAI_IPFS_API": "{dead}"}, "FLAI_IPFS_API {dead}: no answer"),
    "unwritable data dir": (["demo"], {"FLAI_DATA_DIR": "{file}/data"},
                            "FLAI_DATA_DIR {file}/data: not writable"),
}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every case, run once through the CLI in one fresh process (so Ray's state is its own)."""
    a_file = tmp_path_factory.mktemp("cli") / "file"
    a_file.write_bytes(b"")
    fill = {"dead": f"http://127.0.0.1:{free_port()}", "file": str(a_file)}
    request = {name: [args, {k: v.format(**fill) for k, v in env.items()}]
               for name, (args, env, _) in CLI_CASES.items()}
    done = subprocess.run([sys.executable, __file__, json.dumps(request)], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    return {name: {**results[name], "expected": expected.format(**fill)}
            for name, (_, _, expected) in CLI_CASES.items()}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_invalid_cli_parameters_exit_2_before_ray_starts(cli_results: dict[str, dict], case: str) -> None:
    result = cli_results[case]
    assert result["exit_code"] == 2, result["output"]
    assert result["output"].startswith(f"error: {result['expected']}"), result["output"]
    assert result["output"].count("\n") == 1, result["output"]  # one line
    assert not result["ray_init_called"] and not result["ray_initialized"]


def _run_cli_cases(request: dict[str, list]) -> dict[str, dict]:
    """In this fresh process: run each case through the CLI; ``ray.init`` fails loudly if called."""
    import ray
    from typer.testing import CliRunner

    from cli import app
    from flai.settings import get_settings

    calls: list[object] = []

    def refuse_init(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise RuntimeError("ray.init was called")

    ray.init = refuse_init
    results = {}
    for name, (args, env) in request.items():
        calls.clear()
        get_settings.cache_clear()  # each case brings its own FLAI_* environment
        outcome = CliRunner().invoke(app, args, env=env)
        results[name] = {"exit_code": outcome.exit_code, "output": outcome.output,
                         "ray_init_called": bool(calls), "ray_initialized": ray.is_initialized()}
    return results


if __name__ == "__main__":
    print(json.dumps(_run_cli_cases(json.loads(sys.argv[1]))))
