"""Private inference on a two-party CrypTen session: only the consumer learns the output.

Parties: rank 0, the model holder, holds the weights ``W_l, b_l`` of layers ``l = 1..L``
(a ReLU between consecutive layers); rank 1, the consumer, holds the rows ``X`` (``n x F``);
a dealer (``Triples.TTP``, rank 2) deals the Beaver triples, computes nothing and sees
nothing revealed. Both parties are given the public ``MpcPlan`` (architecture and ``n``).

0. The parties compare the plan's digest and stop, before any share exists, unless equal.
1. ``H = X`` enters as the sharing ``(0, encode(X))`` and each ``W_l^T`` as
   ``(encode(W_l^T), 0)``. Every opening below masks them with the dealer's uniform triple
   shares, so no zero-sharing is needed to hide an input.
2. Layer ``l``: ``Y = H W_l^T`` by one Beaver matmul (triple ``A, B, C = A B``; open
   ``E = H - A`` and ``D = W_l^T - B`` in one round; ``Y = C + E B + A D``, plus ``E D`` at
   rank 0), at scale ``2**32``. Each party truncates its own share by ``2**16`` (two-party
   local truncation, as CrypTen does for two parties), then the holder adds ``encode(b_l)``
   to its share: a value it holds alone needs no sharing.
3. Between layers, ReLU: ``s = [Y < 0]`` by ``_Gates.negative`` (the sign bit of a 64-bit
   binary adder on XOR shares: 7 AND rounds, and one round to additive bits at scale 1), then
   ``H = Y (1 - s)`` by one Beaver multiplication; its bit factor makes it exact.
4. The holder sends its share of the output to the consumer, never the other way; the
   consumer adds its own share, decodes the logits (``flai.mpc.fixed_point.decode``) and
   applies the sigmoid itself (the logit tells nothing the probability does not).

Rounds: a logistic regression costs one opening round and one message to the consumer; the
MLP (three layers) 3 + 2 x 9 rounds. The dealer answers the holder once per triple request.

What each party learns (semi-honest, non-colluding): the holder, ``n`` and the public plan:
``E`` is masked by ``A``, which it never sees whole, and it learns ``B`` (from ``D`` and its
own weights), which masks nothing of the consumer's. The consumer, the logits: ``D`` is
masked by the holder's share of ``B``, every other opening by the dealer's randomness, and
no intermediate value is revealed. The dealer, the plan's shapes only.

Accuracy: ``2**-16`` fixed point, rounded at every truncation (measured: at most 3e-5 on a
probability of the MLP). A local truncation of a shared ``v`` (at scale ``2**32``) is off by about
``2**48`` with probability ``|v| / 2**64``, e.g. 3e-8 per value for ``|y| < 128``: one wrong
output in about 3,000 batches of 100 rows through the MLP.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from dataclasses import dataclass

import numpy as np
import torch
from flai.inference.model import Architecture, ModelWeights, sigmoid
from flai.mpc.fixed_point import PRECISION_BITS, decode, encode
from flai.mpc.secure_combine import PlanMismatch

HOLDER, CONSUMER = 0, 1  # ranks; the dealer is rank 2


class MpcInferenceInputError(ValueError):
    """A party's input does not fit the agreed plan, or the session is not a 2PC one."""


@dataclass(frozen=True)
class MpcPlan:
    """What both parties know before a request: the model's shape and the number of rows."""

    architecture: Architecture
    rows: int

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(repr(("flai-private-inference/1", self.architecture.kind.value,
                                    self.architecture.widths, self.rows)).encode()).digest()


def serve_as_holder(weights: ModelWeights, plan: MpcPlan) -> None:
    """Run the protocol above as the model holder (rank 0); it learns no output."""
    if weights.architecture != plan.architecture:
        raise MpcInferenceInputError(f"the weights are a {weights.architecture}, the plan "
                                     f"asks for a {plan.architecture}")
    _forward(plan, weights, None)


def predict_as_consumer(rows: np.ndarray, plan: MpcPlan) -> np.ndarray:
    """Run the protocol as the consumer (rank 1): the probability of class 1 for each row."""
    if rows.shape != (plan.rows, plan.architecture.features) or not np.isfinite(rows).all():
        raise MpcInferenceInputError(f"rows of shape {rows.shape}, the plan asks for "
                                     f"{(plan.rows, plan.architecture.features)}, all finite")
    return sigmoid(decode(_forward(plan, None, rows)).numpy() / 2**PRECISION_BITS)


def _forward(plan: MpcPlan, weights: ModelWeights | None, rows: np.ndarray | None
             ) -> torch.Tensor | None:
    """Steps 0-4; the output logits as ring elements at scale ``2**32`` at the consumer, None
    at the holder."""
    from flai.mpc.crypten_adapter import communicator

    comm = communicator()
    rank, world = comm.get_rank(), comm.get_world_size()
    if world != 2 or (rank == HOLDER) != (weights is not None):
        raise MpcInferenceInputError(f"rank {rank} of {world}: a 2PC session, the "
                                     "holder (rank 0) brings weights, the consumer rows")
    gates = _LayerGates(comm, plan)  # asks the dealer for the plan's randomness (holder)
    layers = plan.architecture.layers
    hidden = (encode(torch.from_numpy(rows)) if rows is not None
              else torch.zeros(plan.rows, plan.architecture.features, dtype=torch.int64))
    encoded = _encoded(weights) if weights is not None else None
    for number, (inputs, outputs) in enumerate(layers):
        weight_t, bias = (encoded[number] if encoded is not None
                          else (torch.zeros(inputs, outputs, dtype=torch.int64), None))
        y = gates.matmul(hidden, weight_t)  # step 2, at scale 2**32
        last = number == len(layers) - 1
        if not last:
            y = y >> PRECISION_BITS  # each party its own share
        if bias is not None:
            y += bias << PRECISION_BITS if last else bias
        if not last:  # step 3
            y = gates.relu(y)
        hidden = y
    return gates.reveal_to_consumer(hidden[:, 0].contiguous())  # step 4


def _encoded(weights: ModelWeights) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(encode(W_l^T), encode(b_l))`` per layer, computed once per weights object."""
    cached = _ENCODED.get(id(weights))
    if cached is None or cached[0] is not weights:
        layers = [(encode(torch.from_numpy(np.ascontiguousarray(layer.weight.T))),
                   encode(torch.from_numpy(np.asarray(layer.bias))))
                  for layer in weights.layers]
        cached = _ENCODED[id(weights)] = (weights, layers)
        while len(_ENCODED) > 8:
            _ENCODED.pop(next(iter(_ENCODED)))
    return cached[1]


_ENCODED: dict[int, tuple[ModelWeights, list]] = {}
DEALER = 2


def _items(plan: MpcPlan) -> tuple:
    """The plan's correlated randomness, in the order it is drawn and used (public shapes)."""
    items, n = [], plan.rows
    layers = plan.architecture.layers
    for number, (inputs, outputs) in enumerate(layers):
        items.append(("additive", (n, inputs), (inputs, outputs), "matmul"))
        if number < len(layers) - 1:
            size = (_AND_GATES * n * outputs,)
            items += [("binary", size, size), ("bitmul", (n * outputs,))]
    return tuple(items)


_AND_GATES = 1 + 2 * 5 + 1  # per compared value: x & y, then Kogge-Stone (one AND at shift 32)


class _LayerGates:
    """Raw int64 shares, the plan's randomness drawn up front and every opening one message
    each way on the session's mesh (no size limit, no gloo)."""

    def __init__(self, communicator, plan: MpcPlan) -> None:
        from flai.mpc.crypten_adapter import (TTPClient, generate_kbit_random_tensor,
                                              generate_random_ring_element)

        self.rank = communicator.get_rank()
        self.peer = 1 - self.rank
        self.mesh = communicator.mesh
        self._digest = plan.digest
        items = _items(plan)
        if self.rank == HOLDER:  # one request; the dealer streams the answers back
            self.mesh.exchange({DEALER: pickle.dumps({"function": "deal_plan", "device": None,
                                                      "args": (items,), "kwargs": {}})}, ())
        generator = TTPClient.get().get_generator()
        ring = functools.partial(generate_random_ring_element, generator=generator)
        bits = functools.partial(generate_kbit_random_tensor, generator=generator)
        consumer = self.rank == CONSUMER
        self._dealt = []  # per item: this party's shares, the dealer's part still to come
        for item in items:
            kind, sizes = item[0], item[1:]
            if kind == "additive":
                a, b = ring(sizes[0]), ring(sizes[1])
                c_size = (sizes[0][0], sizes[1][1])
                self._dealt.append([a, b, ring(c_size) if consumer else None])
            elif kind == "binary":
                a, b = bits(sizes[0]), bits(sizes[1])
                self._dealt.append([a, b, bits(sizes[0]) if consumer else None])
            else:  # bitmul: r_B, then (consumer) r_A, then a, then (consumer) c
                (size,) = sizes
                r_binary = bits(size, bitlength=1)
                r_additive = ring(size) if consumer else None
                mask = ring(size)
                self._dealt.append([r_binary, r_additive, mask, ring(size) if consumer else None])
        self._next, self._last = 0, len(items) - 1

    def _take(self) -> list[torch.Tensor]:
        """This party's shares of the next item; the holder completes them from the dealer."""
        shares, index = self._dealt[self._next], self._next
        self._dealt[self._next] = None
        self._next += 1
        if self.rank == HOLDER:
            if index == self._last:  # the answer: its size (pickled), then its data
                self.mesh.exchange({}, [DEALER])
            data = self.mesh.exchange({}, [DEALER])[DEALER]
            dealt = torch.from_numpy(np.frombuffer(data, dtype=np.int64).copy())
            if shares[-1] is None and len(shares) == 4:  # bitmul: r_A and c
                shares[1], shares[3] = dealt.view(2, -1).unbind(0)
            else:
                shares[-1] = dealt.view(shares[0].shape[0], -1) if shares[0].dim() == 2 \
                    and shares[1].dim() == 2 else dealt
        return shares

    def add_public(self, share: torch.Tensor, value) -> torch.Tensor:
        return share + value if self.rank == HOLDER else share

    def _open(self, xor: list[torch.Tensor], add: list[torch.Tensor]
              ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Open XOR- and additively shared tensors in one message each way. The first
        opening of a request carries the plan's digest (step 0), checked before anything
        received is used."""
        parts = [t.reshape(-1) for t in (*xor, *add)]
        head = []
        if self._digest is not None:
            head = [torch.from_numpy(np.frombuffer(self._digest, dtype=np.int64).copy())]
        mine = torch.cat(head + parts)
        data = self.mesh.exchange({self.peer: mine.numpy().tobytes()}, [self.peer])[self.peer]
        theirs = torch.from_numpy(np.frombuffer(data, dtype=np.int64).copy())
        if self._digest is not None:
            if theirs.numel() != mine.numel() or not torch.equal(theirs[:4], head[0]):
                raise PlanMismatch(f"rank {self.rank}: the parties hold different plans")
            theirs, mine, self._digest = theirs[4:], mine[4:], None
        xor_size = sum(t.numel() for t in xor)
        opened = torch.cat([mine[:xor_size] ^ theirs[:xor_size],
                            mine[xor_size:] + theirs[xor_size:]])
        chunks = opened.split([t.numel() for t in (*xor, *add)])
        shaped = [c.view(t.shape) for c, t in zip(chunks, (*xor, *add))]
        return shaped[:len(xor)], shaped[len(xor):]

    def matmul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shares of ``x @ y`` in the ring (Beaver, one opening round)."""
        a, b, c = self._take()
        _, (epsilon, delta) = self._open([], [x - a, y - b])
        return self.add_public(c + epsilon.matmul(b) + a.matmul(delta), epsilon.matmul(delta))

    def relu(self, y: torch.Tensor) -> torch.Tensor:
        """Shares of ``max(y, 0)``: the XOR-shared bit ``k = [y >= 0]``, then ``y k`` in one
        round with the dealer's random bit ``r`` (shared both ways) and ``a, c = a r``: open
        ``z = k ^ r`` and ``e = y - a`` together; ``k = r + z - 2 r z`` and ``y r = c + e r``,
        so ``y k = (1 - 2 z) (c + e r) + z y``."""
        keep = self._sign(y.reshape(-1)) ^ (1 if self.rank == HOLDER else 0)
        r_binary, r_additive, a, c = self._take()
        (z,), (e,) = self._open([keep ^ r_binary], [y.reshape(-1) - a])
        product = (c + e * r_additive) * (1 - 2 * z) + z * y.reshape(-1)
        return product.view(y.shape)

    def _sign(self, flat: torch.Tensor) -> torch.Tensor:
        """XOR shares of ``[x < 0]``, the top bit of ``x_0 + x_1`` (the holder's and the
        consumer's additive shares as XOR-shared addends): one AND round for the generate
        bits, then a Kogge-Stone carry tree of 6 (the last one only for the carries)."""
        a_all, b_all, c_all = self._take()
        used = 0

        def and_(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            nonlocal used
            a, b, c = (t[used:used + x.numel()].view(x.size()) for t in (a_all, b_all, c_all))
            used += x.numel()
            (epsilon, delta), _ = self._open([x ^ a, y ^ b], [])
            z = c ^ (epsilon & b) ^ (a & delta)
            return z ^ (epsilon & delta) if self.rank == HOLDER else z

        zero = torch.zeros_like(flat)
        # Party j's share is an XOR-shared addend: (its share, 0) and (0, its share).
        x, y = (flat, zero) if self.rank == HOLDER else (zero, flat)
        generate, propagate = and_(x, y), x ^ y
        for shift in (1, 2, 4, 8, 16):
            both = and_(torch.stack([propagate, propagate]),
                        torch.stack([generate << shift, propagate << shift]))
            generate, propagate = generate ^ both[0], both[1]
        generate = generate ^ and_(propagate, generate << 32)
        if used != a_all.numel():
            raise RuntimeError(f"the circuit used {used} of {a_all.numel()} Beaver triples")
        return ((x ^ y ^ (generate << 1)) >> 63) & 1

    def reveal_to_consumer(self, share: torch.Tensor) -> torch.Tensor | None:
        """The shared value at the consumer (a ring element): one message from the holder."""
        if self.rank == HOLDER:
            self.mesh.exchange({CONSUMER: share.numpy().tobytes()}, ())
            return None
        data = self.mesh.exchange({}, [HOLDER])[HOLDER]
        return share + torch.from_numpy(np.frombuffer(data, dtype=np.int64).copy())
