"""Network helpers shared by every component that listens for peers."""

from __future__ import annotations

import socket


def local_address(peer_host: str) -> str:
    """This machine's address on the route to ``peer_host`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((peer_host, 9))
        return probe.getsockname()[0]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` at this moment (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
