"""What crosses an actor's boundary: metadata only, never rows or updates; and the names of the
parties that hold no data. Nothing here loads torch, so an orchestrator can import it."""

from __future__ import annotations

from dataclasses import dataclass

from flai.mpc.session import MpcSession

AGGREGATOR = "aggregator"  # rank 0 of every session; owns no data, learns only results
DEALER = "dealer"  # deals Beaver triples; holds no data, learns nothing


@dataclass(frozen=True)
class Incarnation:
    """A provider's answer to a ping: its name and the id its current incarnation drew at
    start. A different id under the same name means the actor was restarted."""

    provider: str
    boot_id: str


@dataclass(frozen=True)
class ProviderInfo:
    provider: str
    dataset: str
    train_rows: int
    holdout_rows: int


@dataclass(frozen=True)
class FitReport:
    """A provider's account of its local round. ``accepted`` False: nothing will be shared."""

    provider: str
    samples: int
    train_loss: float
    accepted: bool
    reason: str = ""


@dataclass(frozen=True)
class EvalReport:
    provider: str
    samples: int


class SessionBusy(RuntimeError):
    """Another computation holds the federation's session; ask again once it has ended."""


@dataclass(frozen=True)
class OpenedSession:
    session: MpcSession
    formed: bool  # a new session: its parties rendezvous before the computation runs
