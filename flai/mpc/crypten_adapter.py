"""The one place FLAI meets CrypTen: importing this module loads CrypTen 0.4.1, adapted to
torch 2.13, with its communicator on FLAI's socket mesh. Protocols import it inside the
functions that compute (so that loading a party's module loads no CrypTen) and reach CrypTen
only through it; a CrypTen or torch upgrade touches this file.

Adaptations, all measured (shared/STACK.md and our own tests):

1. torch moved ``torch.onnx._internal.registration`` to
   ``torch.onnx._internal.torchscript_exporter.registration``; CrypTen only imports the name,
   so registering the new module under the old name is enough.
2. CrypTen passes no timeout to ``init_process_group``/``new_group``, so a party whose peer
   died would wait torch's default 30 minutes. ``set_collective_timeout`` lowers torch's
   default for the process; it applies to the rendezvous and to every collective.
3. A rendezvous that fails part-way leaves torch's process-group counter advanced and, if it
   failed inside CrypTen's communicator set-up, a default group CrypTen no longer knows. The
   next session of that party would then wait on store keys no fresh party writes.
   ``reset_process_groups`` returns the process to the state of a fresh one.
4. ``crypten.uninit`` keeps the trusted-third-party client singleton bound to the old session,
   so the next TTP session skips its seed exchange with the dealer and both sides wait until
   they time out. ``reset_process_groups`` drops that singleton too.
5. Every attribute access on a ``CrypTensor`` first reads ``cfg.debug.validation_mode``, an
   omegaconf lookup (18 us); in a profile of a comparison circuit that was a third of a
   party's CPU time.
   FLAI never runs CrypTen's validation mode, so ``load_crypten`` restores the plain
   ``__getattribute__``.
6. CrypTen's communicator with its small reveals and its dealer's requests on a ``Mesh``.
   
   CrypTen reveals a batch of shares with one gloo ``all_reduce`` per tensor, and each one
   costs several ring hops and thread hand-offs (``flai.mpc.mesh``). ``MeshCommunicator``
   sends a whole batch of up to ``MESH_MAX_BYTES`` per party as one message to every party at
   once and sums (or XORs) what arrives; a reveal to one party (``reduce``) is one message from
   each party to it. Larger tensors (a model update's secure sum, where the ring's bandwidth
   matters) stay on gloo. Results are bit-identical: int64 sums wrap modulo ``2**64`` exactly
   as gloo's do.
   
   Under ``Triples.TTP`` the dealer joins the mesh too (``MeshDealer``), and rank 0's requests
   for triples, three gloo messages each, become one message there and one back.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pickle
import sys
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import torch

from flai.mpc.mesh import Mesh, MeshError
from flai.net import local_address

_OLD = "torch.onnx._internal.registration"
_NEW = "torch.onnx._internal.torchscript_exporter.registration"


def load_crypten() -> ModuleType:
    """Import crypten with the registration alias in place (done once, when this module loads)."""
    if _OLD not in sys.modules:
        sys.modules[_OLD] = importlib.import_module(_NEW)
    import crypten
    from crypten.cryptensor import CrypTensor

    CrypTensor.__getattribute__ = getattr(CrypTensor.__getattribute__, "__wrapped__",
                                          CrypTensor.__getattribute__)
    return crypten


def set_collective_timeout(seconds: float) -> None:
    """Bound the rendezvous and every gloo collective of this process to ``seconds``."""
    from torch.distributed import distributed_c10d

    distributed_c10d.default_pg_timeout = timedelta(seconds=seconds)


def reset_process_groups() -> None:
    """Forget any (partly) initialised session so the next one starts like a fresh process."""
    import torch.distributed as dist
    from torch.distributed import distributed_c10d

    TTPClient.uninit()
    if dist.is_initialized():
        dist.destroy_process_group()
    distributed_c10d._world.group_count = 0


crypten = load_crypten()
from crypten.common import serial  # noqa: E402
from crypten.communicator.communicator import _logging  # noqa: E402
from crypten.communicator.distributed_communicator import DistributedCommunicator  # noqa: E402
from crypten.mpc import MPCTensor  # noqa: E402,F401  (for the protocols)
from crypten.mpc.primitives import ArithmeticSharedTensor, BinarySharedTensor  # noqa: E402,F401
from crypten.common.rng import generate_kbit_random_tensor, generate_random_ring_element  # noqa: E402,F401
from crypten.mpc.provider.ttp_provider import TTPClient, TTPServer  # noqa: E402,F401  (TTPClient: for the protocols)
from torch.distributed import ReduceOp  # noqa: E402


def communicator() -> DistributedCommunicator:
    """This process's communicator in its current session."""
    return crypten.communicator.get()


def triple_provider():
    """Who deals this session's Beaver triples (CrypTen's TFP or TTP provider)."""
    return crypten.mpc.get_default_provider()

if TYPE_CHECKING:
    from flai.mpc.session import MpcSession

MESH_MAX_BYTES = 1 << 16


class MeshCommunicator(DistributedCommunicator):
    """Small ``all_reduce``/``reduce`` batches, and a dealer's requests, over ``self.mesh``."""

    mesh: Mesh

    @_logging
    def all_reduce(self, input, op=ReduceOp.SUM, batched=False):
        tensors = input if batched else [input]
        flat = _flatten(tensors, op)
        if flat is None:
            return DistributedCommunicator.all_reduce.__wrapped__(self, input, op, batched)
        others = self._other_parties()
        received = self.mesh.exchange(dict.fromkeys(others, flat.tobytes()), others)
        return _unflatten(_combine(op, [flat, *received.values()]), tensors, batched)

    @_logging
    def reduce(self, input, dst, op=ReduceOp.SUM, batched=False):
        tensors = input if batched else [input]
        flat = _flatten(tensors, op)
        if flat is None:
            return DistributedCommunicator.reduce.__wrapped__(self, input, dst, op, batched)
        if self.get_rank() != dst:
            self.mesh.exchange({dst: flat.tobytes()}, ())
            return None
        received = self.mesh.exchange({}, self._other_parties())
        return _unflatten(_combine(op, [flat, *received.values()]), tensors, batched)

    def _other_parties(self) -> list[int]:
        """The computing parties but this one (a dealer is on the mesh, not among them)."""
        return [peer for peer in range(self.get_world_size()) if peer != self.get_rank()]

    # A dealer's traffic: objects on the group of every process, tensors on rank 0's pair
    # group with the dealer; both groups exist, unused, without a dealer.
    @_logging
    def send_obj(self, obj, dst, group=None):
        if not (self.ttp_initialized and group is self.ttp_group):
            return DistributedCommunicator.send_obj.__wrapped__(self, obj, dst, group)
        self.mesh.exchange({dst: pickle.dumps(obj)}, ())

    @_logging
    def recv_obj(self, src, group=None):
        if not (self.ttp_initialized and group is self.ttp_group):
            return DistributedCommunicator.recv_obj.__wrapped__(self, src, group)
        # The dealer waits for rank 0's next request for as long as rank 0 keeps the session.
        serving = self.get_rank() == self.get_ttp_rank()
        return serial.restricted_loads(self.mesh.exchange({}, [src], patient=serving)[src])

    @_logging
    def broadcast(self, input, src, group=None, batched=False):
        if batched or not (self.ttp_initialized and group is self.ttp_comm_group):
            return DistributedCommunicator.broadcast.__wrapped__(self, input, src, group, batched)
        if self.get_rank() == src:
            peer = 0 if src == self.get_ttp_rank() else self.get_ttp_rank()
            self.mesh.exchange({peer: input.numpy().tobytes()}, ())
        else:
            data = self.mesh.exchange({}, [src])[src]
            received = np.frombuffer(data, dtype=input.numpy().dtype).reshape(input.shape)
            input.copy_(torch.from_numpy(received.copy()))
        return input


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


def use_mesh(rank: int, session: MpcSession) -> Mesh:
    """Connect this process's mesh and switch its initialised CrypTen communicator onto it."""
    from torch.distributed import distributed_c10d

    store = distributed_c10d._get_default_store()
    mesh = Mesh.connect(rank, session.processes, store, local_address(session.host),
                        session.timeout_s)
    communicator = DistributedCommunicator.get()
    communicator.__class__ = MeshCommunicator
    communicator.mesh = mesh
    return mesh


class MeshDealer(TTPServer):
    """CrypTen's trusted third party, answering rank 0's requests over the session's mesh.

    ``TTPServer`` serves from its constructor, right after exchanging seeds with the
    parties; the mesh joins in between. A party leaving ends the service, as it does in
    CrypTen (there, through gloo's ``RuntimeError``).
    """

    def __init__(self, session: MpcSession) -> None:
        self._session, self._mesh = session, None
        try:
            super().__init__()
        except MeshError as error:
            logging.info("the dealer stops: %s", error)
        finally:
            if self._mesh is not None:
                self._mesh.close()

    def _setup_generators(self) -> None:
        super()._setup_generators()
        self._mesh = use_mesh(len(self._session.parties), self._session)

    def deal_plan(self, items: tuple) -> torch.Tensor:
        """Rank 0's shares of a whole computation's correlated randomness, in one request.

        ``items`` are public shapes, in the order the parties draw them (``flai.inference.mpc``):
        ``("additive", size0, size1, op)`` (``a``, ``b``, ``c = op(a, b)``, additive shares),
        ``("binary", size0, size1)`` (the same with XOR and AND), and ``("bitmul", size)``: a
        random bit ``r``, XOR-shared and additively shared, a random ``a`` and ``c = a r``
        (rank 0's ``r_A`` and ``c`` stacked). Party ``i``'s shares come from ``party_prg``
        seeded like its CrypTen generator; the dealer derives rank 0's last share of each.
        Each item is streamed to rank 0 as soon as it is drawn, the last as this request's
        answer, so rank 0 computes with the first while later ones are still being drawn."""
        if getattr(self, "_prgs", None) is None:
            self._prgs = [party_prg(g) for g in self.generators]
        draw = [functools.partial(prg_tensor, prg) for prg in self._prgs]
        shares = []
        for item in items:
            kind, sizes = item[0], item[1:]
            if kind == "additive":
                a, b = (draw[0](s) + draw[1](s) for s in sizes[:2])
                c = getattr(torch, sizes[2])(a, b)
                share = c - draw[1](c.shape)
            elif kind == "binary":
                a, b = (draw[0](s) ^ draw[1](s) for s in sizes)
                c = a & b
                share = c ^ draw[1](c.shape)
            elif kind == "bitmul":
                (size,) = sizes
                bit = draw[0](size, 1) ^ draw[1](size, 1)
                bit_0 = bit - draw[1](size)
                mask = draw[0](size) + draw[1](size)
                share = torch.stack([bit_0, mask * bit - draw[1](size)])
            else:
                raise ValueError(f"unknown correlated randomness {kind!r}")
            shares.append(share)
            if len(shares) < len(items):
                self._mesh.exchange({0: share.numpy().tobytes()}, ())
        return shares[-1]


def party_prg(generator: torch.Generator) -> np.random.Generator:
    """The Philox stream a party shares with the dealer, keyed by their CrypTen generator's
    seed (exchanged at the session's start); a few times cheaper per element than drawing
    from that generator."""
    return np.random.Philox(generator.initial_seed() & (2**64 - 1))


def prg_tensor(prg, size, bits: int = 64) -> torch.Tensor:
    """``size`` uniform ring elements (``bits=64``) or bits (``bits=1``) from ``prg``."""
    raw = prg.random_raw(int(np.prod(size))).view(np.int64)
    if bits == 1:
        raw &= 1
    return torch.from_numpy(raw.reshape(size))
