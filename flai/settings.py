"""Every tunable of FLAI, in one place.

Values come from, highest first: ``FLAI_*`` environment variables, the TOML file named by
``FLAI_CONFIG`` (default ``flai.toml`` in the working directory, if present), the defaults
below. Switching a part from its embedded default to a real one is configuration only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLAI_", extra="ignore")

    # Where providers' partitions, the local store, lineage and chain state live.
    data_dir: Path = Path(".flai")

    # Compute: None starts a local Ray; an address ("ray://host:10001" or "auto") joins a cluster.
    ray_address: str | None = None
    ray_namespace: str = "flai"
    # The object store of a local Ray (no address). It holds models, shares and results, never
    # rows; Ray's default, 30% of memory, lands in a file on disk where /dev/shm is smaller.
    ray_object_store_mib: int = Field(1024, ge=100)
    # Custom Ray resource a provider's actor requires, e.g. "org" pins provider "x" to a node
    # started with --resources '{"org:x": 1}'. None: place anywhere.
    provider_resource_prefix: str | None = None

    # Secure multi-party computation.
    mpc_host: str = "127.0.0.1"  # where the aggregator party listens for the rendezvous
    mpc_timeout_s: float = Field(60.0, gt=0)  # rendezvous and every collective
    max_update_norm: float = Field(100.0, gt=0)  # L2 bound on a provider's model update
    min_providers: int = Field(2, ge=2)  # below this a round refuses to aggregate
    provider_call_timeout_s: float = Field(120.0, gt=0)  # local training/evaluation calls
    ping_timeout_s: float = Field(10.0, gt=0)  # a provider silent this long sits the round out

    # Federated analytics has no settings here on purpose: what a query may disclose is the
    # data set's policy (flai.datasets.policy), held by its providers, never the analyst's.

    # Chain: None runs py-evm in process; otherwise a JSON-RPC URL (anvil, a testnet, an L2).
    chain_url: str | None = None
    chain_private_key: SecretStr | None = None  # signer on a real network; None: node's account
    # Blocks mined on top of a transaction's block before it is acknowledged, on a node other
    # than the local anvil (whose state is written to disk after every transaction instead).
    chain_confirmations: int = Field(0, ge=0)
    anvil_port: int = 8545  # `flai chain up`
    # Storage: None keeps a local content-addressed store under data_dir; otherwise a
    # Kubo-compatible RPC API address such as "http://127.0.0.1:5001".
    ipfs_api: str | None = None

    # Reward settlement (flai.rewards.split) pays each accepted task's escrowed pool. Weight
    # of a round's newest value in the exponential moving average of a provider's values over
    # its rounds of a task (1.0: no smoothing).
    reward_value_smoothing: float = Field(0.5, gt=0, le=1)

    # Governance (contracts/governance.py): the SuperDAO's parameters, and every new SubDAO's
    # unless its proposal says otherwise. Small development defaults; a real network wants
    # days (e.g. 7,200 blocks delay, 50,400 period, 2 days of timelock).
    governance_voting_delay_blocks: int = Field(1, ge=0)  # proposal -> vote opens (its snapshot)
    governance_voting_period_blocks: int = Field(20, ge=1)  # how long a vote stays open
    governance_quorum_percent: int = Field(4, ge=0, le=100)  # of the largest weight votes could reach
    governance_timelock_delay_s: int = Field(60, ge=0)  # queued -> executable
    governance_proposal_threshold: int = Field(0, ge=0)  # votes (FLAI base units) needed to propose

    # Pay-per-inference (contracts/market.py, flows/inference.py): what an accepted model is
    # listed at when its task is settled (its SubDAO may reprice it): FLAI base units per
    # request up to each batch size, and the demand-driven multiplier (EIP-1559-style) moving
    # once per window towards more or fewer requests than the target, within its bounds.
    inference_tiers: dict[int, int] = {1: 10**18, 100: 20 * 10**18, 1000: 100 * 10**18}
    inference_demand_target: int = Field(10, ge=1)  # requests per window
    inference_window_s: int = Field(3600, ge=1)
    inference_multiplier_bounds: tuple[float, float] = (0.5, 4.0)
    inference_timeout_s: float = Field(120.0, gt=0)  # a request not served by then is refunded
    inference_deadline_s: int = Field(900, ge=60)  # after it the consumer may refund its escrow
    # The row budget settlement lists a model with: the rows one consumer may have predicted
    # by it. The market contract enforces it; the model's SubDAO may change it.
    inference_rows_per_consumer: int = Field(1000, ge=1)

    seed: int = 0

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> "Settings":
        self.data_dir = self.data_dir.expanduser().resolve()
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("FLAI_CONFIG", "flai.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment for the ``with`` block only; what was there
    before (set or not) comes back."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
