"""The committed artifacts are what the committed sources compile to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from contracts.compiled import UNISWAP_PAIR, ChainContract, compiled

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def compile_check(root: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None:
        pytest.fail("node (20+) is needed to compile the contracts", pytrace=False)
    if not (CONTRACTS / "node_modules" / "solc").is_dir():
        pytest.fail(
            f"solc is not installed under {CONTRACTS / 'node_modules'}: run `npm ci --prefix contracts`",
            pytrace=False,
        )
    return subprocess.run(
        ["node", str(root / "compile.mjs"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_committed_artifacts_match_a_fresh_compile() -> None:
    run = compile_check(CONTRACTS)
    assert run.returncode == 0, run.stderr
    assert "artifacts up to date (11 contracts" in run.stdout and "; 4 published)" in run.stdout


def test_every_deployed_contract_and_the_pair_have_artifacts() -> None:
    for contract in (*ChainContract, UNISWAP_PAIR):
        artifact = compiled(contract)
        name = contract.value if isinstance(contract, ChainContract) else contract
        assert artifact.name == name and artifact.abi and len(artifact.bytecode) > len("0x")


def test_check_fails_when_a_source_changes(tmp_path: Path) -> None:
    for name in ("compile.mjs", "package.json"):
        shutil.copy(CONTRACTS / name, tmp_path / name)
    shutil.copytree(CONTRACTS / "src", tmp_path / "src")
    shutil.copytree(CONTRACTS / "artifacts", tmp_path / "artifacts")
    (tmp_path / "node_modules").symlink_to(CONTRACTS / "node_modules")
    registry = tmp_path / "src" / "LineageRegistry.sol"
    registry.write_text(registry.read_text().replace('"RECORDER_ROLE"', '"RECORDER_ROLE_V2"'))
    run = compile_check(tmp_path)
    assert run.returncode == 1
    assert "artifacts out of date with contracts/src: LineageRegistry.json" in run.stderr
