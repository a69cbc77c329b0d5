"""Finding and starting a federation's actors on Ray.

Actors are detached and named ``<federation>/<provider>`` in the configured namespace, so
any flow run in the same Ray cluster reaches the same providers, and a provider that comes
back under its name rejoins the next round. ``stop`` ends them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle

from actors.reports import AGGREGATOR, DEALER
from flai.datasets import (
    Dataset,
    Partitioning,
    federation_name,
    partition_path,
    write_partitions,
)
from flai.settings import Settings, get_settings


@dataclass(frozen=True)
class Federation:
    """A named group of providers that hold the same data set.

    Each provider loads its own partition, ``partition_path(data_dir, split, provider)`` where
    its actor runs; ``split`` names the partitioning (None: the federation's own name).
    """

    name: str
    dataset: Dataset
    providers: tuple[str, ...]
    split: str | None = None

    def actor_name(self, party: str) -> str:
        return f"{self.name}/{party}"


def federation_for(dataset: Dataset, how: Partitioning, settings: Settings | None = None) -> Federation:
    """The demo federation of ``dataset`` split ``how``, named after the split; its providers'
    partitions are written where missing (never rewritten)."""
    settings = settings or get_settings()
    files = write_partitions(dataset, settings.data_dir, how)
    return Federation(federation_name(dataset, how, len(files)), dataset, tuple(files))


def connect(settings: Settings | None = None) -> None:
    """Join the configured Ray cluster, or start a local one, once per process."""
    settings = settings or get_settings()
    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.ray_namespace)
    else:
        ray.init(namespace=settings.ray_namespace, include_dashboard=False,
                 _node_ip_address="127.0.0.1", log_to_driver=False,
                 object_store_memory=settings.ray_object_store_mib * 2**20)


def start(federation: Federation, settings: Settings | None = None) -> dict[str, str]:
    """Start (or find) each provider's actor over its own partition, the aggregator and the dealer.

    Waits until every actor answers; returns the providers that could not start, with why.
    Those sit out until they are started again. A provider whose file is missing or
    unreadable starts, and fails its quality gate with the reason, so it sits rounds out.
    """
    settings = settings or get_settings()
    connect(settings)
    missing = [party for party in (*federation.providers, AGGREGATOR, DEALER)
               if not _running(federation, party)]
    if missing:
        _create(federation, missing, settings)
    ray.get([aggregator(federation).ping.remote(), dealer(federation).ping.remote()],
            timeout=settings.provider_call_timeout_s)
    _, failed = call_each(federation, federation.providers, lambda p: p.ping.remote(),
                          settings.provider_call_timeout_s)
    return failed


def _running(federation: Federation, party: str) -> bool:
    try:
        ray.get_actor(federation.actor_name(party))
    except ValueError:
        return False
    return True


def _create(federation: Federation, parties: list[str], settings: Settings) -> None:
    """Create the named parties' actors (one already there under its name is kept)."""
    # The actor classes load torch and the providers' stack: a process attaching to a running
    # federation never imports them.
    from actors.aggregator import AggregatorActor
    from actors.dealer import DealerActor
    from actors.provider import ProviderActor

    for party in parties:
        options = {"name": federation.actor_name(party), "get_if_exists": True,
                   "lifetime": "detached"}
        if party == AGGREGATOR:
            AggregatorActor.options(**options).remote(settings.mpc_host, settings.mpc_timeout_s)
        elif party == DEALER:
            DealerActor.options(**options).remote()
        else:
            data_file: Path = partition_path(settings.data_dir, federation.split or federation.name,
                                             party, federation.dataset.schema.name)
            resources = ({f"{settings.provider_resource_prefix}:{party}": 0.001}
                         if settings.provider_resource_prefix else None)
            ProviderActor.options(**options, resources=resources).remote(
                party, federation.dataset, data_file, settings.max_update_norm, seed=settings.seed)


def provider(federation: Federation, name: str) -> ActorHandle:
    """The provider's actor; raises ``ValueError`` if it is gone."""
    return ray.get_actor(federation.actor_name(name))


def aggregator(federation: Federation) -> ActorHandle:
    return ray.get_actor(federation.actor_name(AGGREGATOR))


def dealer(federation: Federation) -> ActorHandle:
    return ray.get_actor(federation.actor_name(DEALER))


def stop(federation: Federation) -> None:
    for party in (*federation.providers, AGGREGATOR, DEALER):
        try:
            ray.kill(ray.get_actor(federation.actor_name(party)))
        except ValueError:
            continue


class FailureKind(str, Enum):
    """What became of a call on a party, in the words the round table shows."""

    NOT_RUNNING = "not running"
    DIED = "died"
    UNAVAILABLE = "was unreachable (restarting)"
    TIMED_OUT = "did not answer"
    RAISED = "failed"


@dataclass(frozen=True)
class CallFailure:
    """Why one party's call failed: one short line, never an error's text (it could quote data)."""

    kind: FailureKind
    detail: str = ""  # the wait that ran out, or the type of the error a call raised

    @property
    def party_lost(self) -> bool:
        """The party itself is gone, restarting or stuck, not only this call of it."""
        return self.kind is not FailureKind.RAISED

    def __str__(self) -> str:
        return f"{self.kind.value} {self.detail}".rstrip()


def failure_of(error: ray.exceptions.RayError) -> CallFailure:
    """The one place Ray's errors become reasons. A task error is checked first: Ray makes it
    an instance of its cause's type too, and a call that raised leaves its party alive."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None) or error
        return CallFailure(FailureKind.RAISED, f"with {type(cause).__name__}")
    if isinstance(error, ray.exceptions.ActorUnavailableError):
        return CallFailure(FailureKind.UNAVAILABLE)
    if isinstance(error, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)):
        return CallFailure(FailureKind.DIED)
    if isinstance(error, ray.exceptions.GetTimeoutError):
        return CallFailure(FailureKind.TIMED_OUT, "in time")
    return CallFailure(FailureKind.RAISED, f"with {type(error).__name__}")


def call_each(federation: Federation, names: tuple[str, ...],
              call: Callable[[ActorHandle], ray.ObjectRef],
              timeout_s: float) -> tuple[dict[str, Any], dict[str, str]]:
    """Make ``call`` on each named provider at once; wait up to ``timeout_s`` for all.

    Returns (results by provider, why each other provider failed): gone, died, timed out, or
    the type of error its call raised. One provider's failure never blocks the others' results.
    """
    return gather(start_calls(federation, names, call), timeout_s)


def gather(refs: dict[str, ray.ObjectRef | CallFailure],
           timeout_s: float) -> tuple[dict[str, Any], dict[str, str]]:
    """Results of pending calls by party, and each failure as one readable line."""
    results, failed = collect(refs, timeout_s)
    return results, {name: str(failure) for name, failure in failed.items()}


def collect(refs: dict[str, ray.ObjectRef | CallFailure],
            timeout_s: float) -> tuple[dict[str, Any], dict[str, CallFailure]]:
    """Results of pending calls by party; a ``CallFailure`` in place of a ref is already known."""
    failed = {name: ref for name, ref in refs.items() if isinstance(ref, CallFailure)}
    pending = {name: ref for name, ref in refs.items() if not isinstance(ref, CallFailure)}
    ready, _ = (ray.wait(list(pending.values()), num_returns=len(pending), timeout=timeout_s)
                if pending else ([], []))
    results = {}
    for name, ref in pending.items():
        if ref not in ready:
            failed[name] = CallFailure(FailureKind.TIMED_OUT, f"within {timeout_s:g} s")
            continue
        try:
            results[name] = ray.get(ref)
        except ray.exceptions.RayError as error:
            failed[name] = failure_of(error)
    return results, failed


def start_calls(federation: Federation, names: tuple[str, ...],
                call: Callable[[ActorHandle], ray.ObjectRef]) -> dict[str, ray.ObjectRef | str]:
    """Start ``call`` on each named provider; a provider that is gone gets the reason instead."""
    refs: dict[str, ray.ObjectRef | str] = {}
    for name in names:
        try:
            refs[name] = call(provider(federation, name))
        except ValueError:
            refs[name] = CallFailure(FailureKind.NOT_RUNNING)
    return refs
