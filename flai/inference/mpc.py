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

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.distributed import ReduceOp

from flai.inference.model import Architecture, ModelWeights, sigmoid
from flai.mpc.fixed_point import PRECISION_BITS, decode, encode
from flai.mpc.secure_combine import PlanMismatch, _Gates

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
    return sigmoid(decode(_forward(plan, None, rows)).numpy())


def _forward(plan: MpcPlan, weights: ModelWeights | None, rows: np.ndarray | None
             ) -> torch.Tensor | None:
    """Steps 0-4; the output logits as ring elements at the consumer, None at the holder."""
    from flai.mpc.crypten_adapter import communicator, triple_provider

    gates = _LayerGates(communicator(), triple_provider())
    if gates.world != 2 or (gates.rank == HOLDER) != (weights is not None):
        raise MpcInferenceInputError(f"rank {gates.rank} of {gates.world}: a 2PC session, the "
                                     "holder (rank 0) brings weights, the consumer rows")
    gates.agree(plan.digest)  # step 0
    layers = plan.architecture.layers
    hidden = (encode(torch.from_numpy(rows)) if rows is not None
              else torch.zeros(plan.rows, plan.architecture.features, dtype=torch.int64))
    for number, (inputs, outputs) in enumerate(layers):
        weight_t = (encode(torch.from_numpy(weights.layers[number].weight.T.copy()))
                    if weights is not None else torch.zeros(inputs, outputs, dtype=torch.int64))
        y = gates.truncate(gates.matmul(hidden, weight_t))  # step 2
        if weights is not None:
            y += encode(torch.from_numpy(weights.layers[number].bias))
        if number < len(layers) - 1:  # step 3
            (below,) = gates.negative([y])
            y = gates.multiply(y, gates.add_public(-below, 1))
        hidden = y
    return gates.reveal_to(CONSUMER, hidden[:, 0].contiguous())  # step 4


class _LayerGates(_Gates):
    """``_Gates`` with what a dense layer needs: a Beaver matmul and a truncation, and a plan
    check on the mesh."""

    def agree(self, digest: bytes) -> None:
        """Raise ``PlanMismatch`` unless both parties hold the same 32-byte ``digest``.

        One mesh round instead of ``_Gates.agree``'s gloo ``all_gather`` (a third of a
        logistic request's time, measured): ``d_0 + d_1 = 2 d_mine`` in Z_(2**64) holds at
        both parties iff ``d_0 = d_1``."""
        mine = torch.from_numpy(np.frombuffer(digest, dtype=np.int64).copy())
        if not torch.equal(self.communicator.all_reduce(mine), 2 * mine):
            raise PlanMismatch(f"rank {self.rank}: the parties hold different plans; "
                               "nothing was shared")

    def matmul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shares of ``x @ y`` in the ring (Beaver, one opening round)."""
        a, b, c = (t.share for t in
                   self.provider.generate_additive_triple(x.size(), y.size(), "matmul"))
        epsilon, delta = self._open([x - a, y - b], ReduceOp.SUM)
        return self.add_public(c + epsilon.matmul(b) + a.matmul(delta), epsilon.matmul(delta))

    def truncate(self, share: torch.Tensor) -> torch.Tensor:
        """Shares of ``x / 2**16`` from shares of ``x``: each party shifts its own (floor)."""
        return share >> PRECISION_BITS

    def reveal_to(self, rank: int, share: torch.Tensor) -> torch.Tensor | None:
        """The shared value at ``rank`` (a ring element): one message from the other party."""
        return self.communicator.reduce(share, rank)
