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



@app.callback()
def _attach(context: typer.Context) -> None:
    """Use the stack running for the data directory (``flai up``), when one runs: its Prefect
    server, chain, content store and, with ``--ray``, its federations. For this command only;
    an explicit environment variable still wins."""
    from deployments.attach import attached_env
    from flai.settings import environment, get_settings

    stack_env = {name: value for name, value in attached_env(get_settings().data_dir).items()
                 if name not in os.environ}
    if stack_env:
        context.with_resource(environment(stack_env))
        get_settings.cache_clear()  # read again, with the stack's values
        context.call_on_close(get_settings.cache_clear)


from cli import (  # noqa: E402  (register commands)
    chain,
    dao,
    data,
    demo,
    inference,
    lineage,
    market,
    query,
    rewards,
    stack,
    training,
)

__all__ = ["app", "chain", "dao", "data", "demo", "inference", "lineage", "market", "query",
           "rewards", "stack", "training"]
