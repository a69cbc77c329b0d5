"""``python -m cli``: the ``flai`` command."""

from cli import app

app(prog_name="flai")
