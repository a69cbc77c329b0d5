"""What may cross a provider actor's boundary: metadata only, never rows or updates."""

from __future__ import annotations

from dataclasses import dataclass


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
