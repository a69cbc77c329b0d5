"""A TCP connection between every pair of parties of a session, for latency-bound rounds.

A comparison circuit is a chain of a dozen or more reveals of a few hundred bytes, so its
time is the latency of one round, times the rounds. Through gloo a round costs several
thread hand-offs per party: on five parties sharing two cores, one all-to-all of 1.2 KB
took 3.0 ms (a ring all-reduce 8.7 ms), against 0.11 ms over plain sockets, each party
sending to every other at once and then reading what it was sent. ``Mesh`` is those
sockets: opened once per session (addresses are exchanged through the session's
rendezvous store), length-prefixed messages, non-blocking sends so that no two parties can
block each other, and the session's timeout on every exchange, so a dead party raises
instead of hanging.
"""

from __future__ import annotations

import math
import selectors
import socket
import struct
import time
from collections.abc import Iterable, Mapping

_LENGTH = struct.Struct("<Q")
_RANK = struct.Struct("<I")
_READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE


class MeshError(ConnectionError):
    """A peer left, or did not answer within the session's timeout."""


class Mesh:
    """Party ``rank`` of ``world``: one socket to each other party."""

    def __init__(self, rank: int, world: int, peers: Mapping[int, socket.socket], timeout_s: float):
        self.rank, self.world, self.timeout_s = rank, world, timeout_s
        self._peers = dict(peers)
        self._inbox = {peer: bytearray() for peer in self._peers}  # a fast peer may run ahead
        for connection in self._peers.values():
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.setblocking(False)
        self._selector = selectors.DefaultSelector()
        for peer, connection in self._peers.items():
            self._selector.register(connection, selectors.EVENT_READ, peer)

    @classmethod
    def connect(cls, rank: int, world: int, store, local_address: str, timeout_s: float) -> Mesh:
        """Listen, publish ``host:port`` under the rank in ``store``, connect to lower ranks.

        ``store`` is the session's rendezvous store (``set``/``get``, ``get`` waiting for the
        key): each party connects to every lower rank and accepts every higher one.
        """
        peers: dict[int, socket.socket] = {}
        with socket.create_server((local_address, 0)) as listener:
            listener.settimeout(timeout_s)
            store.set(f"flai/mesh/{rank}", "%s:%d" % listener.getsockname()[:2])
            try:
                for peer in range(rank):
                    host, port = store.get(f"flai/mesh/{peer}").decode().rsplit(":", 1)
                    connection = socket.create_connection((host, int(port)), timeout=timeout_s)
                    connection.sendall(_RANK.pack(rank))
                    peers[peer] = connection
                for _ in range(rank + 1, world):
                    connection, _ = listener.accept()
                    connection.settimeout(timeout_s)
                    (peer,) = _RANK.unpack(_read_exactly(connection, _RANK.size))
                    if peer in peers or not rank < peer < world:
                        connection.close()
                        raise MeshError(f"an unexpected peer {peer} connected")
                    peers[peer] = connection
            except (OSError, RuntimeError) as error:
                for connection in peers.values():
                    connection.close()
                raise MeshError(f"party {rank} could not reach every peer: {error}") from error
        return cls(rank, world, peers, timeout_s)

    def exchange(self, outgoing: Mapping[int, bytes], sources: Iterable[int], *,
                 patient: bool = False) -> dict[int, bytes]:
        """Send ``outgoing[peer]`` to each peer and receive one message from each source.

        ``patient`` waits as long as the sources stay connected (a server between requests)
        instead of the session's timeout."""
        unsent = {}
        for peer, data in outgoing.items():  # a small message almost always leaves at once
            message = memoryview(_LENGTH.pack(len(data)) + data)
            if rest := self._send_some(peer, message):
                unsent[peer] = rest
                self._selector.modify(self._peers[peer], _READ_WRITE, peer)
        waiting = set(sources)
        received = {}
        deadline = math.inf if patient else time.monotonic() + self.timeout_s
        while True:
            for peer in list(waiting):
                if (message := self._take(peer)) is not None:
                    received[peer] = message
                    waiting.discard(peer)
            if not waiting and not unsent:
                return received
            events = self._selector.select(
                timeout=None if patient else deadline - time.monotonic())
            if not events:
                raise MeshError(f"party {self.rank}: no message from {sorted(waiting)} "
                                f"within {self.timeout_s:g} s")
            for key, mask in events:
                peer = key.data
                if mask & selectors.EVENT_WRITE and peer in unsent:
                    if rest := self._send_some(peer, unsent.pop(peer)):
                        unsent[peer] = rest
                    else:
                        self._selector.modify(self._peers[peer], selectors.EVENT_READ, peer)
                if mask & selectors.EVENT_READ:
                    self._receive(peer, expected=peer in waiting)

    def close(self) -> None:
        self._selector.close()
        for connection in self._peers.values():
            connection.close()

    def _receive(self, peer: int, expected: bool) -> None:
        """Read what ``peer`` sent into its inbox; a peer may close once it is done."""
        try:
            chunk = self._peers[peer].recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as error:
            raise MeshError(f"party {self.rank}: receiving from peer {peer} failed: {error}") from error
        if chunk:
            self._inbox[peer] += chunk
            return
        self._selector.unregister(self._peers[peer])
        if expected:
            raise MeshError(f"party {self.rank}: peer {peer} closed the connection")

    def _take(self, peer: int) -> bytes | None:
        """The first complete message from ``peer``, removed from its inbox; else None."""
        inbox = self._inbox[peer]
        if len(inbox) < _LENGTH.size:
            return None
        end = _LENGTH.size + _LENGTH.unpack_from(inbox)[0]
        if len(inbox) < end:
            return None
        message = bytes(inbox[_LENGTH.size:end])
        del inbox[:end]
        return message

    def _send_some(self, peer: int, message: memoryview) -> memoryview | None:
        """Send what the socket takes now; the rest, or None when all of it left."""
        try:
            sent = self._peers[peer].send(message)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            raise MeshError(f"party {self.rank}: sending to peer {peer} failed: {error}") from error
        return message[sent:] if sent < len(message) else None


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise MeshError("a peer closed the connection during the handshake")
        data += chunk
    return data
