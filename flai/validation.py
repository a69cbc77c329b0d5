"""Checks a training job's parameters and the parts it needs before any work starts.

Why: without them bad input surfaced late, after Ray started or a whole round ran (a
negative Dirichlet alpha as a numpy traceback, one provider as a refused aggregation, a dead
chain or IPFS URL at the first record, a read-only data directory as a raw OSError after
training, more providers than memory as a machine swapping while actors start). Every check
raises :class:`PreflightError`, one line naming the parameter or setting, its value and the
problem; ``flai train``/``flai demo`` print it and exit 2, the ``train`` deployment fails its
run with it. Nothing here starts Ray, and the core imports nothing above it.

Example:
    >>> check_alpha(0.5)
    >>> check_alpha(0.0)
    Traceback (most recent call last):
    ...
    flai.validation.PreflightError: alpha 0.0: must be a finite number above 0 (the Dirichlet concentration)
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from flai.datasets import Dataset, Partitioning, heart
from flai.settings import Settings

GiB = 1024**3
MiB = 1024**2
# Measured here (2 cores, Ray 2.60, torch 2.13; census split 4 and 8 ways, one round): each
# provider actor's process held 440-600 MiB (PSS), nearly all of it torch, CrypTen and Great
# Expectations rather than data; the aggregator and the dealer about 200 MiB each and Ray's
# own daemons about 300 MiB. Rounded up, as actors also grow while a round runs.
PROVIDER_BYTES = 600 * MiB
FEDERATION_BASE_BYTES = 1 * GiB  # the aggregator, the dealer and Ray's daemons
NETWORK_TIMEOUT_S = 5.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class PreflightError(ValueError):
    """A job parameter or a part the job needs is unusable; raised before any work starts."""

    def __init__(self, name: str, value: object, problem: str) -> None:
        super().__init__(f"{name} {'not given' if value is None else value}: {problem}")
        self.name = name
        self.value = value
        self.problem = problem


def check_alpha(alpha: float) -> None:
    """The Dirichlet concentration of a label-skewed split: finite and above 0."""
    if not (math.isfinite(alpha) and alpha > 0):
        raise PreflightError("alpha", alpha,
                             "must be a finite number above 0 (the Dirichlet concentration)")


def check_fit(mu: float, learning_rate: float, seed: int) -> None:
    """FedProx's ``mu`` finite and at least 0, the learning rate finite and above 0, the seed
    at least 0 (numpy refuses negative seeds).

    >>> check_fit(0.0, float("nan"), 0)
    Traceback (most recent call last):
    ...
    flai.validation.PreflightError: learning_rate nan: must be a finite number above 0
    """
    if not (math.isfinite(mu) and mu >= 0):
        raise PreflightError("mu", mu, "must be a finite number, 0 or more (0 is FedAvg)")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise PreflightError("learning_rate", learning_rate, "must be a finite number above 0")
    if seed < 0:
        raise PreflightError("seed", seed, "must be 0 or more")


def provider_count(dataset: Dataset, how: Partitioning) -> int:
    """How many providers the split gives: ``how.providers``, or heart's hospitals."""
    if how.providers is not None:
        return how.providers
    if dataset is not Dataset.HEART:
        raise PreflightError("providers", None,
                             f"{dataset.value} has no natural split; give a provider count")
    return int(dataset.load()[heart.SITE_COLUMN].nunique())


def check_provider_count(providers: int, min_providers: int) -> None:
    """Enough providers for a round to aggregate (``settings.min_providers``)."""
    if providers < min_providers:
        raise PreflightError("providers", providers,
                             f"a round needs at least {min_providers} (settings.min_providers)")


def check_memory(providers: int, available_bytes: int) -> None:
    """Enough free memory on this machine for ``providers`` local provider actors.

    >>> check_memory(4, 24 * GiB)
    >>> check_memory(64, 24 * GiB)
    Traceback (most recent call last):
    ...
    flai.validation.PreflightError: providers 64: need about 38.5 GiB (1.0 GiB plus 0.59 GiB per provider), 24.0 GiB available
    """
    needed = FEDERATION_BASE_BYTES + providers * PROVIDER_BYTES
    if needed > available_bytes:
        raise PreflightError(
            "providers", providers,
            f"need about {needed / GiB:.1f} GiB ({FEDERATION_BASE_BYTES / GiB:.1f} GiB plus "
            f"{PROVIDER_BYTES / GiB:.2f} GiB per provider), {available_bytes / GiB:.1f} GiB available")


def providers_run_here(settings: Settings) -> bool:
    """Whether provider actors start on this machine: a local Ray, or a Ray head on loopback
    (the local stack), with no custom resource pinning them to organisations' nodes.

    >>> providers_run_here(Settings(ray_address="127.0.0.1:6380"))
    True
    >>> providers_run_here(Settings(ray_address="ray://head.example:10001"))
    False
    """
    if settings.provider_resource_prefix is not None:
        return False
    if settings.ray_address is None:
        return True
    address = settings.ray_address
    return urlsplit(address if "://" in address else f"//{address}").hostname in LOOPBACK


def check_data_dir(data_dir: Path) -> None:
    """The data directory exists or can be made, and a file can be written in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as error:
        raise PreflightError("FLAI_DATA_DIR", data_dir,
                             f"not writable ({error.strerror or type(error).__name__})") from None


def check_chain(url: str, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
    """The JSON-RPC node at ``url`` answers ``eth_chainId`` with a chain id."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        answer = httpx.post(url, json=request, timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # refused, timed out, not a URL
        raise PreflightError("FLAI_CHAIN_URL", url,
                             f"no answer to eth_chainId ({type(error).__name__})") from None
    if not (answer.is_success and isinstance(_json_field(answer, "result"), str)):
        raise PreflightError("FLAI_CHAIN_URL", url,
                             f"answered eth_chainId with HTTP {answer.status_code} and no chain id")


def _json_field(answer: httpx.Response, name: str) -> object:
    """``name`` of a JSON object body; None for any other body."""
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def check_ipfs(api_url: str, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
    """The Kubo-compatible RPC API at ``api_url`` answers ``/api/v0/version``."""
    try:
        answer = httpx.post(f"{api_url.rstrip('/')}/api/v0/version", timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise PreflightError("FLAI_IPFS_API", api_url,
                             f"no answer ({type(error).__name__})") from None
    if not answer.is_success:
        raise PreflightError("FLAI_IPFS_API", api_url,
                             f"answered /api/v0/version with HTTP {answer.status_code}")


def check_training(dataset: Dataset, how: Partitioning, mu: float, learning_rate: float,
                   seed: int, settings: Settings) -> None:
    """Every check of a training job, cheapest first; raises the first PreflightError."""
    check_alpha(how.alpha)
    check_fit(mu, learning_rate, seed)
    providers = provider_count(dataset, how)
    check_provider_count(providers, settings.min_providers)
    if providers_run_here(settings):
        check_memory(providers, psutil.virtual_memory().available)
    check_data_dir(settings.data_dir)
    # The embedded chain and the local store live in this process and the data directory.
    if settings.chain_url is not None:
        check_chain(settings.chain_url)
    if settings.ipfs_api is not None:
        check_ipfs(settings.ipfs_api)
