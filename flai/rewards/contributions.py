"""The contribution record of a round, and the account each provider is paid at.

A round's record says, per provider: how many samples it trained on, whether its data passed
the quality gate, why it left the round (if it did) and the value of its update when the round
was valued (Shapley, leave-one-out; None otherwise). It is canonical JSON: the same record
always gives the same bytes, hence the same CID, so a retried recording stores nothing new and
the chain can refuse a different record for the same round (``tasks.settlement``).

Providers are paid at EVM accounts derived here, in one place, from the provider's name and
key material kept under the data directory (``flai.crypto.KeyStore``, entry
``provider-accounts``): the same data directory always pays a provider at the same account,
and whoever holds that directory can sign for it (to stake its rewards). A provider that runs
its own node would bring its own key instead; the record stores the account, not the key, so
the settlement never needs a secret.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import is_address, keccak, to_checksum_address

from flai.rewards.errors import RewardsInputError

FORMAT = "flai.contributions/1"
ACCOUNT_KEY_MATERIAL = "provider-accounts"
"""The key store entry whose 32 bytes every provider account of a data directory derives from."""


class ContributionRecordError(RewardsInputError):
    """A contribution record, or a part of one, is malformed."""


@dataclass(frozen=True)
class Contribution:
    """What one provider brought to one round."""

    provider: str
    samples: int  # training samples behind its update (0 if it trained none)
    quality_passed: bool  # its data passed the quality gate
    dropped: str = ""  # why it left the round; empty when it stayed to the end
    value: float | None = None  # its value in the round, when the round was valued

    @property
    def eligible(self) -> bool:
        """Earns for this round: passed the gate and stayed."""
        return self.quality_passed and not self.dropped


@dataclass(frozen=True)
class ContributionRecord:
    """A round's contributions, one per provider (sorted by name), and their accounts."""

    task_id: str
    round_number: int  # from 1, as the flow counts
    contributions: tuple[Contribution, ...]
    accounts: Mapping[str, str]  # provider -> checksummed EVM address

    def __post_init__(self) -> None:
        if not self.task_id:
            raise ContributionRecordError("task_id", self.task_id, "a task id")
        if isinstance(self.round_number, bool) or not isinstance(self.round_number, int) \
                or self.round_number < 1:
            raise ContributionRecordError("round_number", self.round_number, "an integer >= 1")
        names = [c.provider for c in self.contributions]
        if not names or names != sorted(set(names)):
            raise ContributionRecordError("contributions", names, "providers, each once, sorted by name")
        for c in self.contributions:
            _check_contribution(c)
            account = self.accounts.get(c.provider)
            if not isinstance(account, str) or not is_address(account):
                raise ContributionRecordError(f"accounts[{c.provider}]", account, "an EVM address")
        if set(self.accounts) != set(names):
            raise ContributionRecordError("accounts", sorted(self.accounts), f"exactly {names}")

    @classmethod
    def of(cls, task_id: str, round_number: int, contributions: Sequence[Contribution],
           accounts: Mapping[str, str]) -> ContributionRecord:
        """The record of ``contributions`` (any order), with the accounts of their providers."""
        ordered = tuple(sorted(contributions, key=lambda c: c.provider))
        return cls(task_id, round_number, ordered,
                   {c.provider: to_checksum_address(accounts[c.provider]) for c in ordered})

    def to_json(self) -> bytes:
        """Canonical JSON: identical records give identical bytes.

        >>> record = ContributionRecord.of("t", 1, [Contribution("b", 5, True, value=0.25),
        ...     Contribution("a", 3, False)], {"a": "0x" + "11" * 20, "b": "0x" + "22" * 20})
        >>> ContributionRecord.from_json(record.to_json()) == record
        True
        >>> json.loads(record.to_json())["providers"][0]["provider"]
        'a'
        """
        providers = [{"provider": c.provider, "account": self.accounts[c.provider],
                      "samples": c.samples, "quality_passed": c.quality_passed,
                      "dropped": c.dropped, "value": c.value} for c in self.contributions]
        document = {"format": FORMAT, "task_id": self.task_id, "round": self.round_number,
                    "providers": providers}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ContributionRecord:
        try:
            document: dict[str, Any] = json.loads(data)
            if document.get("format") != FORMAT:
                raise ContributionRecordError("format", document.get("format"), FORMAT)
            providers = document["providers"]
            contributions = tuple(Contribution(p["provider"], p["samples"], p["quality_passed"],
                                               p["dropped"], p["value"]) for p in providers)
            return cls(document["task_id"], document["round"], contributions,
                       {p["provider"]: p["account"] for p in providers})
        except (ValueError, KeyError, TypeError) as error:
            if isinstance(error, ContributionRecordError):
                raise
            raise ContributionRecordError("record", data[:80], f"a {FORMAT} JSON document") from error


def _check_contribution(c: Contribution) -> None:
    if not isinstance(c.provider, str) or not c.provider:
        raise ContributionRecordError("provider", c.provider, "a provider name")
    if isinstance(c.samples, bool) or not isinstance(c.samples, int) or c.samples < 0:
        raise ContributionRecordError(f"{c.provider}.samples", c.samples, "an integer >= 0")
    if not isinstance(c.quality_passed, bool):
        raise ContributionRecordError(f"{c.provider}.quality_passed", c.quality_passed, "a bool")
    if not isinstance(c.dropped, str):
        raise ContributionRecordError(f"{c.provider}.dropped", c.dropped, "a reason, or ''")
    if c.value is not None and (isinstance(c.value, bool) or not isinstance(c.value, (int, float))
                                or not math.isfinite(c.value)):
        raise ContributionRecordError(f"{c.provider}.value", c.value, "a finite number or None")


def provider_key(provider: str, key_material: bytes) -> str:
    """The private key (``0x`` hex) of ``provider``'s account: keccak-256 of a domain tag, the
    data directory's key material and the name. (A result outside secp256k1's key range has
    probability about 2**-128; eth-account would refuse it.)

    >>> provider_key("cleveland", bytes(32)) == provider_key("cleveland", bytes(32))
    True
    >>> provider_key("cleveland", bytes(32)) != provider_key("hungary", bytes(32))
    True
    """
    if len(key_material) != 32:
        raise ContributionRecordError("key_material", f"{len(key_material)} bytes", "32 bytes")
    return "0x" + keccak(b"flai/provider-account/1\x00" + key_material + provider.encode()).hex()


def provider_account(provider: str, key_material: bytes) -> str:
    """The checksummed address ``provider`` is paid at.

    >>> provider_account("cleveland", bytes(32)).startswith("0x")
    True
    """
    return Account.from_key(provider_key(provider, key_material)).address
