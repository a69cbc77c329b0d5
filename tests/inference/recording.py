"""The holder and the consumer as they are, recording what crosses into them: the arguments
of the calls that carry a request's data, and every message their MPC mesh sends and
receives."""

from __future__ import annotations

from actors.consumer import Consumer
from actors.model_holder import ModelHolder
from flai.mpc.mesh import Mesh


class _Recorder:
    """Mixed in first: records this process's mesh traffic, and calls that ``_call`` notes."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._calls: list[tuple[str, tuple]] = []
        self._messages: list[tuple[dict[int, bytes], dict[int, bytes]]] = []  # (sent, received)
        original, messages = Mesh.exchange, self._messages

        def exchange(mesh, outgoing, sources, **options):
            received = original(mesh, outgoing, sources, **options)
            messages.append((dict(outgoing), dict(received)))
            return received

        Mesh.exchange = exchange  # in this actor's process only

    def _call(self, name: str, args: tuple) -> None:
        self._calls.append((name, args))

    def recorded(self) -> tuple[list[tuple[str, tuple]], list[tuple[dict, dict]]]:
        """Everything recorded since the last call."""
        calls, messages = list(self._calls), list(self._messages)
        self._calls.clear()
        self._messages.clear()
        return calls, messages


class RecordingHolder(_Recorder, ModelHolder):
    def serve_mpc(self, *args):
        self._call("serve_mpc", args)
        return super().serve_mpc(*args)

    def evaluate_he(self, *args):
        self._call("evaluate_he", args)
        return super().evaluate_he(*args)


class RecordingConsumer(_Recorder, Consumer):
    def predict_mpc(self, *args):
        self._call("predict_mpc", args)
        return super().predict_mpc(*args)

    def he_answered(self, *args):
        self._call("he_answered", args)
        return super().he_answered(*args)
