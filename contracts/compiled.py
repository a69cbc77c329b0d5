"""The compiled contracts: ABI and bytecode read from ``contracts/artifacts/<Name>.json``.

The artifacts are committed (``node contracts/compile.mjs`` writes them, ``--check`` proves
they match the sources), so Python needs no Solidity compiler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


class ChainContract(Enum):
    """The deployed contracts of FLAI; the value is the Solidity contract's name."""

    TOKEN = "FLAIToken"
    BADGE = "ContributionBadge"
    REGISTRY = "LineageRegistry"
    DISCLOSURE = "DisclosureRegistry"
    DISTRIBUTOR = "RewardDistributor"
    STAKING = "ProviderStaking"


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@cache
def compiled(contract: ChainContract) -> CompiledContract:
    """The artifact of ``contract``, read once per process.

    >>> compiled(ChainContract.REGISTRY).bytecode.startswith("0x6080")
    True
    """
    artifact = json.loads((ARTIFACTS / f"{contract.value}.json").read_text("utf-8"))
    return CompiledContract(name=artifact["contractName"], abi=artifact["abi"], bytecode=artifact["bytecode"])
