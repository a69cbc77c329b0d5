"""The ``flai`` command, on top of every layer: it may import anything, and nothing imports it
(the core package ``flai`` imports nothing above itself). Each module imports flows lazily.

Each command group lives in its own module and registers itself on ``app``.
"""

from __future__ import annotations

import os

import typer

import flai  # noqa: F401  (telemetry off before anything else loads)

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

app = typer.Typer(help="FLAI: federated learning and analytics on data that stays home.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)

from cli import chain, data, lineage, query, stack, training  # noqa: E402  (register commands)

__all__ = ["app", "chain", "data", "lineage", "query", "stack", "training"]
