"""Private inference on a two-party CrypTen session: only the consumer learns the output.

Parties: rank 0, the model holder, holds the weights ``W_l, b_l`` of layers ``l = 1..L``
(a ReLU between consecutive layers); rank 1, the consumer, holds the rows ``X`` (``n x F``);
a dealer (``Triples.TTP``, rank 2) deals the correlated randomness, computes nothing and
sees nothing revealed. Both parties are given the public ``MpcPlan`` (architecture and ``n``).

0. Randomness: the plan fixes every gate, so the holder asks the dealer once, at the start,
   for the whole plan's randomness (``MeshDealer.deal_plan``; the request holds shapes only),
   and the dealer streams the holder's shares back while the parties compute. Each party
   draws its other shares from the stream it shares with the dealer (``party_prg``); there
   is no other dealer traffic. Every message goes over the session's socket mesh, one
   message each way per round whatever its size.
1. The parties' first opening carries the plan's digest; each checks the other's before it
   uses anything it received, and stops unless equal (``PlanMismatch``). What was sent by
   then is masked by the dealer's randomness. ``H = X`` enters as the sharing
   ``(0, encode(X))`` and each ``W_l^T`` as ``(encode(W_l^T), 0)`` (encoded once per loaded
   model): the openings below mask them, so no zero-sharing is needed to hide an input.
2. Layer ``l``: ``Y = H W_l^T`` by one Beaver matmul (triple ``A, B, C = A B``; open
   ``E = H - A`` and ``D = W_l^T - B`` in one round; ``Y = C + E B + A D``, plus ``E D`` at
   rank 0), at scale ``2**32``. Between layers each party truncates its own share by
   ``2**16`` (two-party local truncation, as CrypTen does for two parties), then the holder
   adds ``encode(b_l)``: a value it holds alone needs no sharing. The last layer is not
   truncated: the holder adds ``encode(b_L) * 2**16`` and the consumer divides after
   decoding.
3. Between layers, ReLU: the XOR-shared bit ``k = [Y >= 0]`` (the complement of the sign bit
   of a 64-bit binary adder of the two shares: 6 AND rounds, ``x & y`` then a Kogge-Stone
   carry tree), then ``H = Y k`` in one more round: the dealer's random bit ``r`` (XOR- and
   additively shared) and ``a, c = a r``; open ``z = k ^ r`` and ``e = Y - a`` together,
   and ``Y k = (1 - 2 z) (c + e r) + z Y``; the bit factor makes it exact.
4. The holder sends its share of the output to the consumer, never the other way; the
   consumer adds its own share, decodes the logits (``flai.mpc.fixed_point.decode``, then
   ``/ 2**16``) and applies the sigmoid itself (the logit tells nothing the probability
   does not).

Rounds: a logistic regression costs one opening round and one message to the consumer; the
MLP (three layers) 3 + 2 x 7 rounds. The dealer receives one message per request and sends
one per gate, none of which the parties wait for once the first has arrived.

What each party learns (semi-honest, non-colluding): the holder, ``n`` and the public plan:
``E`` is masked by ``A``, which it never sees whole, every binary opening by the dealer's
triples, ``z`` by ``r`` and ``e`` by ``a``, whose consumer shares it never sees; it learns
``B`` (from ``D`` and its own weights), which masks nothing of the consumer's. The consumer,
the logits: ``D`` is masked by the holder's share of ``B``, every other opening by the
dealer's randomness, and no intermediate value is revealed. The dealer, the plan's shapes
only. The dealer's streams (Philox, keyed by the seeds CrypTen's dealer exchanges with each
party) are, like CrypTen's own generators, not a cryptographic PRG.

Accuracy: ``2**-16`` fixed point, rounded at every truncation (measured: at most 3e-5 on a
probability of the MLP). A local truncation of a shared ``v`` (at scale ``2**32``) is off by about
``2**48`` with probability ``|v| / 2**64``, e.g. 3e-8 per value for ``|y| < 128``: one wrong
hidden value in about 3,000 batches of 100 rows through the MLP (the output, revealed
untruncated, has no such error).
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
# This session's CrypTen generator, the Philox stream from it, and the plan whose randomness
# the dealer was already asked for (at the end of the last request: the same plan again).
_PRG: list = [None, None, None]
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
        from flai.mpc.crypten_adapter import TTPClient, party_prg

        self.rank = communicator.get_rank()
        self.peer = 1 - self.rank
        self.mesh = communicator.mesh
        self._digest = plan.digest
        items = _items(plan)
        generator = TTPClient.get().get_generator()
        if _PRG[0] is not generator:  # a new session: a new stream shared with its dealer
            _PRG[:] = [generator, party_prg(generator), None]
        self._prg, prefetched, _PRG[2] = _PRG[1], _PRG[2], None
        if prefetched is not None and prefetched != items:  # another plan: skip those draws
            self._draw(prefetched)
            if self.rank == HOLDER:
                for _ in range(len(prefetched) + 1):
                    self.mesh.exchange({}, [DEALER])
            prefetched = None
        if prefetched is None and self.rank == HOLDER:  # the dealer streams the answers back
            self._request(items)
        self._items = items
        self._dealt = self._draw(items)
        self._next, self._last = 0, len(items) - 1

    def _request(self, items: tuple) -> None:
        self.mesh.exchange({DEALER: pickle.dumps({"function": "deal_plan", "device": None,
                                                  "args": (items,), "kwargs": {}})}, ())

    def _draw(self, items: tuple) -> list:
        """This party's shares of ``items`` from its stream, the holder's last ones to come."""
        from flai.mpc.crypten_adapter import prg_tensor

        ring = bits = functools.partial(prg_tensor, self._prg)
        consumer = self.rank == CONSUMER
        dealt = []
        for item in items:
            kind, sizes = item[0], item[1:]
            if kind == "additive":
                a, b = ring(sizes[0]), ring(sizes[1])
                c_shape = (sizes[0][0], sizes[1][1])
                dealt.append((c_shape, [a, b, ring(c_shape) if consumer else None]))
            elif kind == "binary":
                a, b = bits(sizes[0]), bits(sizes[1])
                dealt.append((sizes[0], [a, b, bits(sizes[0]) if consumer else None]))
            else:  # bitmul: r_B, then (consumer) r_A, then a, then (consumer) c
                (size,) = sizes
                r_binary = bits(size, 1)
                r_additive = ring(size) if consumer else None
                mask = ring(size)
                dealt.append(((2, *size), [r_binary, r_additive, mask,
                                           ring(size) if consumer else None]))
        return dealt


    def _take(self) -> list[torch.Tensor]:
        """This party's shares of the next item; the holder completes them from the dealer."""
        shape, shares = self._dealt[self._next]
        self._dealt[self._next] = None
        if self.rank == HOLDER:
            if self._next == self._last:  # the request's answer: its size (pickled), its data
                self.mesh.exchange({}, [DEALER])
            data = self.mesh.exchange({}, [DEALER])[DEALER]
            dealt = torch.from_numpy(np.frombuffer(data, dtype=np.int64).copy()).view(shape)
            if len(shares) == 4:  # bitmul: r_A and c
                shares[1], shares[3] = dealt.unbind(0)
            else:
                shares[2] = dealt
        self._next += 1
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
            self._request(self._items)  # the next request's randomness, drawn meanwhile
            _PRG[2] = self._items
            self.mesh.exchange({CONSUMER: share.numpy().tobytes()}, ())
            return None
        data = self.mesh.exchange({}, [HOLDER])[HOLDER]
        _PRG[2] = self._items
        return share + torch.from_numpy(np.frombuffer(data, dtype=np.int64).copy())
