"""CrypTen's communicator with its small reveals moved onto a ``Mesh``.

CrypTen reveals a batch of shares with one gloo ``all_reduce`` per tensor, and each one
costs several ring hops and thread hand-offs (``flai.mpc.mesh``). ``MeshCommunicator``
sends a whole batch of up to ``MESH_MAX_BYTES`` per party as one message to every party at
once and sums (or XORs) what arrives; a reveal to one party (``reduce``) is one message from
each party to it. Everything else, and larger tensors (a model update's secure sum, where
the ring's bandwidth matters), stays on gloo. Results are bit-identical: int64 sums wrap
modulo ``2**64`` exactly as gloo's do.
"""

from __future__ import annotations

import functools
import socket

import numpy as np
import torch

from flai.crypten_compat import load_crypten
from flai.mpc.mesh import Mesh

load_crypten()
from crypten.communicator.communicator import _logging  # noqa: E402
from crypten.communicator.distributed_communicator import DistributedCommunicator  # noqa: E402
from torch.distributed import ReduceOp  # noqa: E402

MESH_MAX_BYTES = 1 << 16


class MeshCommunicator(DistributedCommunicator):
    """``all_reduce`` and ``reduce`` of small int64 batches over ``self.mesh``."""

    mesh: Mesh

    @_logging
    def all_reduce(self, input, op=ReduceOp.SUM, batched=False):
        tensors = input if batched else [input]
        flat = _flatten(tensors, op)
        if flat is None:
            return DistributedCommunicator.all_reduce.__wrapped__(self, input, op, batched)
        others = [peer for peer in range(self.get_world_size()) if peer != self.get_rank()]
        received = self.mesh.exchange(dict.fromkeys(others, flat.tobytes()), others)
        return _unflatten(_combine(op, [flat, *received.values()]), tensors, batched)

    @_logging
    def reduce(self, input, dst, op=ReduceOp.SUM, batched=False):
        tensors = input if batched else [input]
        flat = _flatten(tensors, op)
        if flat is None:
            return DistributedCommunicator.reduce.__wrapped__(self, input, dst, op, batched)
        rank = self.get_rank()
        if rank != dst:
            self.mesh.exchange({dst: flat.tobytes()}, ())
            return None
        others = [peer for peer in range(self.get_world_size()) if peer != rank]
        received = self.mesh.exchange({}, others)
        return _unflatten(_combine(op, [flat, *received.values()]), tensors, batched)


def _flatten(tensors: list[torch.Tensor], op) -> np.ndarray | None:
    """The batch as one int64 array, or None when it is not for the mesh."""
    if op not in (ReduceOp.SUM, ReduceOp.BXOR):
        return None
    if not all(t.dtype == torch.int64 and t.device.type == "cpu" for t in tensors):
        return None
    if sum(t.numel() for t in tensors) * 8 > MESH_MAX_BYTES:
        return None
    return np.concatenate([t.reshape(-1).numpy() for t in tensors])


def _combine(op, parts: list) -> torch.Tensor:
    arrays = [np.frombuffer(p, dtype=np.int64) if isinstance(p, bytes) else p for p in parts]
    if op == ReduceOp.SUM:
        with np.errstate(over="ignore"):  # the ring is Z_(2**64): wrapping is the arithmetic
            return torch.from_numpy(np.sum(arrays, axis=0, dtype=np.int64))
    return torch.from_numpy(functools.reduce(np.bitwise_xor, arrays))


def _unflatten(flat: torch.Tensor, like: list[torch.Tensor], batched: bool):
    parts = [chunk.view(t.shape) for chunk, t in zip(flat.split([t.numel() for t in like]), like)]
    return parts if batched else parts[0]


def local_address(peer_host: str) -> str:
    """This machine's address on the route to ``peer_host`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((peer_host, 9))
        return probe.getsockname()[0]


def use_mesh(rank: int, world: int, host: str, timeout_s: float) -> Mesh:
    """Connect this party's mesh and switch its initialised CrypTen communicator onto it."""
    from torch.distributed import distributed_c10d

    store = distributed_c10d._get_default_store()
    mesh = Mesh.connect(rank, world, store, local_address(host), timeout_s)
    communicator = DistributedCommunicator.get()
    communicator.__class__ = MeshCommunicator
    communicator.mesh = mesh
    return mesh
