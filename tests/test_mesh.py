"""The parties' socket mesh: every message arrives whole and in order, and failures raise."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from torch.distributed import HashStore

from flai.mpc.mesh import Mesh, MeshError


def _meshes(world: int, timeout_s: float = 10.0) -> list[Mesh]:
    store = HashStore()
    with ThreadPoolExecutor(world) as pool:
        return list(pool.map(lambda rank: Mesh.connect(rank, world, store, "127.0.0.1", timeout_s),
                             range(world)))


def _close(meshes: list[Mesh]) -> None:
    for mesh in meshes:
        mesh.close()


def test_all_to_all_exchanges_deliver_every_message_whole_and_in_order():
    world = 4
    meshes = _meshes(world)
    big = 4 << 20  # far beyond a socket buffer: sends must interleave with receives

    def party(mesh: Mesh) -> list[dict[int, bytes]]:
        others = [peer for peer in range(world) if peer != mesh.rank]
        rounds = []
        for step, size in enumerate((8, big, 100)):
            outgoing = {peer: bytes([mesh.rank, peer, step]) * (size // 3 + 1) for peer in others}
            rounds.append(mesh.exchange(outgoing, others))
        # A gather to rank 0: the others run ahead into the next exchange before rank 0 reads.
        rounds.append(mesh.exchange({} if mesh.rank == 0 else {0: b"to-0"},
                                    others if mesh.rank == 0 else ()))
        rounds.append(mesh.exchange(dict.fromkeys(others, b"after"), others))
        return rounds

    try:
        with ThreadPoolExecutor(world) as pool:
            results = list(pool.map(party, meshes))
    finally:
        _close(meshes)
    for rank, rounds in enumerate(results):
        others = [peer for peer in range(world) if peer != rank]
        for step, size in enumerate((8, big, 100)):
            assert rounds[step] == {peer: bytes([peer, rank, step]) * (size // 3 + 1) for peer in others}
        assert rounds[3] == (dict.fromkeys(others, b"to-0") if rank == 0 else {})
        assert rounds[4] == dict.fromkeys(others, b"after")


def test_a_peer_that_leaves_makes_the_exchange_fail_not_hang():
    meshes = _meshes(3)
    meshes[2].close()
    try:
        started = time.monotonic()
        with pytest.raises(MeshError, match="peer 2"):
            meshes[0].exchange({1: b"x", 2: b"x"}, [2])
        assert time.monotonic() - started < 5
    finally:
        _close(meshes[:2])


def test_a_silent_peer_fails_the_exchange_after_the_timeout():
    meshes = _meshes(2, timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(MeshError, match="within 0.5 s"):
            meshes[0].exchange({1: b"x"}, [1])
        assert 0.4 < time.monotonic() - started < 5
    finally:
        _close(meshes)
