"""Where FLAI's contracts live on a chain: the deployment manifest.

One JSON file per chain id in a directory the caller chooses (``deployment-<chain id>.json``),
so one state directory can hold deployments on several chains. The file is written
atomically; reading checks its shape and gives typed errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from eth_utils import is_checksum_address

from contracts.compiled import ChainContract
from contracts.errors import LedgerManifestError

FORMAT_VERSION = 1


def manifest_path(directory: Path, chain_id: int) -> Path:
    """The manifest file for ``chain_id`` under ``directory``.

    >>> manifest_path(Path("/state"), 31337).as_posix()
    '/state/deployment-31337.json'
    """
    return Path(directory) / f"deployment-{chain_id}.json"


@dataclass(frozen=True)
class DeploymentManifest:
    """Addresses of one deployment of FLAI's contracts, with the chain and block it lives at."""

    chain_id: int
    deployment_block: int
    deployer: str
    addresses: Mapping[ChainContract, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", MappingProxyType(dict(self.addresses)))

    def to_json(self) -> str:
        """The manifest as stable JSON (sorted keys).

        >>> DeploymentManifest(1, 7, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf").to_json().splitlines()[1]
        '  "addresses": {},'
        """
        document = {
            "addresses": {contract.value: address for contract, address in self.addresses.items()},
            "chain_id": self.chain_id,
            "deployer": self.deployer,
            "deployment_block": self.deployment_block,
            "format": FORMAT_VERSION,
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    def save(self, directory: Path) -> Path:
        """Writes the manifest under ``directory`` (created if needed) and returns its path."""
        path = manifest_path(directory, self.chain_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(self.to_json(), encoding="utf-8")
        partial.replace(path)
        return path

    @property
    def missing(self) -> tuple[ChainContract, ...]:
        """The contracts this manifest has no address for (added to FLAI after it was deployed).

        >>> empty = DeploymentManifest(1, 7, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
        >>> empty.missing == tuple(ChainContract)
        True
        """
        return tuple(contract for contract in ChainContract if contract not in self.addresses)

    @classmethod
    def load(cls, path: Path, *, partial: bool = False) -> DeploymentManifest:
        """Reads a manifest written by :meth:`save`.

        With ``partial`` a manifest may lack contracts (one written before they were added to
        FLAI: see :attr:`missing`); otherwise every :class:`ChainContract` must be in it.
        """
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise LedgerManifestError(path, "does not exist") from exc
        except (OSError, ValueError) as exc:
            raise LedgerManifestError(path, f"unreadable: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
            raise LedgerManifestError(path, f"not a format {FORMAT_VERSION} deployment manifest")
        try:
            recorded = document["addresses"]
            addresses = {
                contract: recorded[contract.value]
                for contract in ChainContract
                if not partial or contract.value in recorded
            }
            manifest = cls(
                chain_id=int(document["chain_id"]),
                deployment_block=int(document["deployment_block"]),
                deployer=str(document["deployer"]),
                addresses=addresses,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerManifestError(path, f"missing or malformed field: {exc}") from exc
        bad = [f"{c.value}={a!r}" for c, a in addresses.items() if not is_checksum_address(a)]
        if bad:
            raise LedgerManifestError(path, f"not checksummed addresses: {', '.join(bad)}")
        return manifest
