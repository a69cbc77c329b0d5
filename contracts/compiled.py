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
    """The deployed contracts of FLAI, in the order they are deployed; the value is the
    Solidity contract's name (its artifact).

    The SuperDAO is a ``FLAIGovernor`` over a ``TimelockController``; each SubDAO is another
    pair of the same contracts, created by the ``SubDAOFactory`` and found through it. The
    inference market is paid in FLAI; FLAI/WETH trades on the published Uniswap V2 contracts,
    whose factory creates the pair (:data:`UNISWAP_PAIR`).
    """

    TOKEN = "FLAIToken"
    BADGE = "ContributionBadge"
    REGISTRY = "LineageRegistry"
    DISCLOSURE = "DisclosureRegistry"
    DISTRIBUTOR = "RewardDistributor"
    STAKING = "ProviderStaking"
    SUPER_TIMELOCK = "TimelockController"
    SUPER_DAO = "FLAIGovernor"
    DAO_FACTORY = "SubDAOFactory"
    TASKS = "TaskRegistry"
    MARKET = "InferenceMarket"
    WETH = "WETH9"
    UNISWAP_FACTORY = "UniswapV2Factory"
    UNISWAP_ROUTER = "UniswapV2Router02"


UNISWAP_PAIR = "UniswapV2Pair"
"""The artifact of the FLAI/WETH pair: the Uniswap factory deploys it, FLAI only reads it."""


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@cache
def compiled(contract: ChainContract | str) -> CompiledContract:
    """The artifact of ``contract``, or of the contract named so (one FLAI does not deploy,
    such as :data:`UNISWAP_PAIR`), read once per process.

    >>> compiled(ChainContract.REGISTRY).bytecode.startswith("0x6080")
    True
    >>> compiled(UNISWAP_PAIR).name
    'UniswapV2Pair'
    """
    name = contract.value if isinstance(contract, ChainContract) else contract
    artifact = json.loads((ARTIFACTS / f"{name}.json").read_text("utf-8"))
    return CompiledContract(name=artifact["contractName"], abi=artifact["abi"], bytecode=artifact["bytecode"])
