"""Finding and starting a federation's actors on Ray.

Actors are detached and named ``<federation>/<provider>`` in the configured namespace, so
any flow run in the same Ray cluster reaches the same providers, and a provider that comes
back under its name rejoins the next round. ``stop`` ends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ray
from ray.actor import ActorHandle

from actors.aggregator import AGGREGATOR, AggregatorActor
from actors.provider import ProviderActor
from flai.datasets import Dataset, partition_path
from flai.settings import Settings, get_settings


@dataclass(frozen=True)
class Federation:
    """A named group of providers that hold the same data set."""

    name: str
    dataset: Dataset
    providers: tuple[str, ...]

    def actor_name(self, party: str) -> str:
        return f"{self.name}/{party}"


def connect(settings: Settings | None = None) -> None:
    """Join the configured Ray cluster, or start a local one, once per process."""
    settings = settings or get_settings()
    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.ray_namespace)
    else:
        ray.init(namespace=settings.ray_namespace, include_dashboard=False,
                 _node_ip_address="127.0.0.1", log_to_driver=False)


def start(federation: Federation, settings: Settings | None = None) -> None:
    """Start (or find) each provider's actor over its own partition, and the aggregator."""
    settings = settings or get_settings()
    connect(settings)
    for provider in federation.providers:
        data_file: Path = partition_path(settings.data_dir, provider, federation.dataset.schema.name)
        resources = ({f"{settings.provider_resource_prefix}:{provider}": 0.001}
                     if settings.provider_resource_prefix else None)
        ProviderActor.options(
            name=federation.actor_name(provider), get_if_exists=True, lifetime="detached",
            resources=resources,
        ).remote(provider, federation.dataset, data_file, settings.max_update_norm,
                 seed=settings.seed)
    AggregatorActor.options(name=federation.actor_name(AGGREGATOR), get_if_exists=True,
                            lifetime="detached").remote(
        settings.mpc_host, settings.mpc_timeout_s)


def provider(federation: Federation, name: str) -> ActorHandle:
    """The provider's actor; raises ``ValueError`` if it is gone."""
    return ray.get_actor(federation.actor_name(name))


def aggregator(federation: Federation) -> ActorHandle:
    return ray.get_actor(federation.actor_name(AGGREGATOR))


def stop(federation: Federation) -> None:
    for party in (*federation.providers, AGGREGATOR):
        try:
            ray.kill(ray.get_actor(federation.actor_name(party)))
        except ValueError:
            continue
