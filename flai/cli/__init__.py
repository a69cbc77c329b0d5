"""The ``flai`` command: the entry point that drives flows (each module imports them lazily).

Each command group lives in its own module and registers itself on ``app``.
"""

from __future__ import annotations

import os

import typer

import flai  # noqa: F401  (telemetry off before anything else loads)

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

app = typer.Typer(help="FLAI: federated learning and analytics on data that stays home.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)

from flai.cli import chain, lineage, query, stack, training  # noqa: E402  (register commands)

__all__ = ["app", "chain", "lineage", "query", "stack", "training"]
