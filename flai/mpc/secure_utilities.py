"""Coalition utilities of a logistic-regression round, computed on secret shares.

Parties: rank 0, the aggregator, holds no data and alone receives the utilities; provider
ranks ``1..P`` each hold what they staged for the round's secure aggregation,
``u_i = [n_i delta_i, n_i]`` (``delta_i``: weights then bias, ``F + 1`` values), and a sample
of at most ``rows`` holdout rows ``(X_i, y_i)``; a dealer (``Triples.TTP``) deals the Beaver
triples, so rank 0 cannot decode what it helps multiply. The global vector ``g`` and the
coalitions are public. Every party calls ``secure_utilities`` with the same ``UtilitySpec``;
rank 0 also passes ``drive``, which asks for batches of coalitions (a valuation strategy:
``flai.valuation.shapley``) and whose result rank 0 returns.

0. The parties compare the digest of their specs and stop, before any share exists, unless
   all are equal.
1. Each provider pads its rows to ``rows`` with zero rows and appends a mask column ``m``
   (1 for a real row, 0 for padding) that doubles as the bias input: ``x = [X, m]``, and
   turns its staged vector back into ``[delta_i, n_i]``. One pseudo-random zero-sharing
   covers ``U = [delta_i, n_i]_i`` and ``V = [x, y]`` of all providers; each provider adds its
   own encoded block to its share (as in ``secure_combine``).
2. The sample counts ``n_i`` (the last column of ``U``) are opened to every party.
3. ``base = X g`` (public weights: local products, one truncation) and
   ``M = X [delta_i]^T``, ``R x P`` for the ``R = P * rows`` rows: one Beaver matmul. Both are
   computed once and serve every batch. (``M`` from ``n_i delta_i`` would be ``n_i`` times
   larger, and CrypTen's truncation fails with probability ``|value| * 2**-32``.)
4. Per batch of ``K`` coalitions, sent by rank 0 as a public 0/1 matrix ``C`` (``K x P``;
   ``K = 0`` ends the session), the logits of every coalition model on every row:
   ``z[r, S] = base[r] + sum_{i in S} M[r, i] n_i / N_S`` with ``N_S = sum_{i in S} n_i``, a
   product with a public ``P x K`` weight matrix (zero for the empty set). This is
   ``x . w_S`` for ``w_S = g + sum_{i in S} n_i delta_i / N_S``.
5. One comparison (``secure_combine``'s carry-save circuit) gives ``s = [z < 0]``; one
   multiplication round gives ``s z``, ``y z`` and ``s y`` (``s`` and ``y`` are bits at scale 1,
   so these products are exact). Then ``|z| = z - 2 s z`` and, per row,
   ``loss = log(1 + e^z) - y z = (z - s z - y z) + log(1 + e^(-|z|))`` (stable: ``e^(-|z|)``
   is in (0, 1]) and ``correct = [predict 1 iff z >= 0 equals y] = y + s - 2 s y``.
   ``e^(-|z|)`` is a limit approximation and ``log(1 + t)`` on [0, 1] a degree-6
   least-squares polynomial (error 1.7e-6): ``_log1p_exp_negative``.
6. One Beaver matmul with the mask sums ``loss`` and ``correct`` over the real rows of every
   coalition; only these ``2K`` sums are revealed, to rank 0, which divides by the number of
   real rows (revealed to it once, in step 2's round).

What is revealed: to rank 0, the per-coalition loss sum and count of correct predictions
(equivalently mean log loss and accuracy) of each coalition asked for, and the total number
of validation rows; to every party, each provider's ``n_i`` (the orchestrator already
receives them in ``FitReport.samples``; opening them makes the coalition divisors public,
which is far cheaper and exact compared with a secure reciprocal) and the coalitions asked
for. Never revealed: an update, a coalition model, a logit, a row or label, and how many
rows any one provider brought (padding hides it; only the total is opened). The utilities
themselves do leak: ``U(S + i) - U(S)`` is how much provider ``i``'s update changes a model's
quality on the validation rows, over up to ``2**P`` coalitions; with few rows per coalition
this is a measurement of ``delta_i`` along directions those rows span.

Accuracy (measured in ``tests/valuation/test_secure_utilities.py``): fixed point with 2**-16
resolution, rounded at every truncation, and the approximations of step 5: a row's loss is
within about 2e-3, a coalition's mean within about 1e-4. Assumes ``|z| < 128``, where the
``e^x`` approximation holds: features are scaled to [0, 1] and updates are norm-bounded
(``Provider.max_update_norm``). CrypTen's truncation after a product is wrong (by about
``2**48``) with probability ``|value| * 2**-32``: summed over the ~``4 R K`` products of a
batch of logits of a few units, about 1e-4 at 8 providers and 256 coalitions.
Threat model: semi-honest, non-colluding parties; with ``Triples.TTP`` rank 0 learns only
what is revealed to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from flai.mpc.fixed_point import SCALE, decode, encode
from flai.mpc.secure_combine import _Gates

T = TypeVar("T")
# batch of coalitions (frozensets of provider names) -> (mean log loss, accuracy) per coalition
Evaluate = Callable[[Sequence[frozenset]], list[tuple[float, float]]]


class UtilityInputError(ValueError):
    """A party's input does not fit the agreed computation (role, shape, labels, counts)."""


class UtilitySpecMismatch(UtilityInputError):
    """The parties were not all given the same ``UtilitySpec``; nothing was shared."""


@dataclass(frozen=True)
class UtilitySpec:
    """The public part: providers in rank order (rank ``i + 1``), the global vector
    (weights then bias), and the cap on each provider's validation rows."""

    providers: tuple[str, ...]
    global_vector: torch.Tensor
    rows: int

    @property
    def width(self) -> int:
        """Model parameters: ``F`` weights and the bias."""
        return self.global_vector.numel()

    @property
    def digest(self) -> bytes:
        content = hashlib.sha256(repr((self.providers, self.rows, _LOG1P.tolist())).encode())
        content.update(self.global_vector.to(torch.float64).numpy().tobytes())
        return content.digest()


@dataclass(frozen=True)
class UtilityInput:
    """A provider's private part: its staged ``[n delta, n]`` and its validation sample."""

    staged: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor


def _log1p_coefficients(degree: int = 6) -> np.ndarray:
    """Least-squares fit of ``log(1 + t)`` on [0, 1] by ``sum_k c_k t^k``, ``k = 1..degree``."""
    t = 0.5 - 0.5 * np.cos(np.pi * (np.arange(2000) + 0.5) / 2000)  # Chebyshev nodes
    powers = np.stack([t**k for k in range(1, degree + 1)], axis=1)
    return np.linalg.lstsq(powers, np.log1p(t), rcond=None)[0]


_LOG1P = _log1p_coefficients()


def secure_utilities(spec: UtilitySpec, local: UtilityInput | None,
                     drive: Callable[[Evaluate], T] | None = None) -> T | None:
    """Run the protocol above as this party. Rank 0 passes ``local=None`` and ``drive``,
    called with an ``Evaluate`` for as many batches as it likes; its result is returned at
    rank 0 and ``None`` elsewhere."""
    from flai.mpc.crypten_adapter import communicator

    comm = communicator()
    rank, world = comm.get_rank(), comm.get_world_size()
    if world != len(spec.providers) + 1 or (rank == 0) != (local is None) or (rank == 0) != (drive is not None):
        raise UtilityInputError(f"rank {rank} of {world} for {len(spec.providers)} providers: rank 0 "
                                "brings drive and no data, every provider rank its UtilityInput")
    _agree(comm, spec.digest)  # step 0
    party = _Party(comm, spec, local)
    if rank != 0:
        while (batch := _broadcast_batch(comm, None, len(spec.providers))) is not None:
            party.sums(batch)
        return None

    def evaluate(coalitions: Sequence[frozenset]) -> list[tuple[float, float]]:
        if not coalitions:
            return []
        batch = torch.tensor([[name in c for name in spec.providers] for c in coalitions], dtype=torch.int64)
        sums = party.sums(_broadcast_batch(comm, batch, len(spec.providers)))
        return [(loss / party.valid_rows, correct / party.valid_rows) for loss, correct in sums.tolist()]

    try:
        return drive(evaluate)
    finally:
        _broadcast_batch(comm, torch.zeros(0, len(spec.providers), dtype=torch.int64), len(spec.providers))


class _Party:
    """One party's shares of steps 1-3, and step 4-6 for a batch."""

    def __init__(self, comm, spec: UtilitySpec, local: UtilityInput | None) -> None:
        from flai.mpc.crypten_adapter import ArithmeticSharedTensor, MPCTensor, triple_provider

        self.comm, self.rank = comm, comm.get_rank()
        providers, width, rows = len(spec.providers), spec.width, spec.rows
        updates = torch.zeros(providers, width + 1, dtype=torch.float64)
        validation = torch.zeros(providers, rows, width + 1, dtype=torch.float64)  # [X, m, y]
        if local is not None:
            _check(spec, local)
            slot = self.rank - 1
            real = len(local.labels)
            staged = local.staged.to(torch.float64)
            updates[slot, :width], updates[slot, width] = staged[:width] / staged[width], staged[width]
            validation[slot, :real, :width - 1] = local.features.to(torch.float64)
            validation[slot, :real, width - 1] = 1.0
            # Labels enter at scale 1, as ring elements 0/1 (encode(y / SCALE) == y): a
            # product with a 0/1 factor at scale 1 needs no truncation.
            validation[slot, :real, width] = local.labels.to(torch.float64) / SCALE
        flat = torch.cat([updates.flatten(), validation.flatten()])
        share = ArithmeticSharedTensor.PRZS(flat.shape).share + encode(flat)  # step 1
        U = share[:updates.numel()].view(providers, width + 1)
        V = share[updates.numel():].view(providers * rows, width + 1)

        # Step 2: n_i to everyone and the number of real rows to rank 0.
        self.samples = decode(comm.all_reduce(U[:, width].contiguous())).round()
        valid = comm.reduce(V[:, width - 1].sum().view(1), 0)
        self.valid_rows = round(decode(valid).item()) if self.rank == 0 else 0

        # Step 3.
        X = MPCTensor.from_shares(V[:, :width].contiguous())
        self.mask = MPCTensor.from_shares(V[:, width - 1].contiguous())
        self.labels = MPCTensor.from_shares(V[:, width].contiguous(), precision=0)
        self.base = X.matmul(spec.global_vector.to(torch.float64))
        self.M = X.matmul(MPCTensor.from_shares(U[:, :width].t().contiguous()))
        # The sign test of step 5: secure_combine's carry-save circuit (at 9 parties 20 AND
        # gates a value, all triples in one request) halved the batch's time at 8 providers
        # against CrypTen's ``< 0`` and its adder tree.
        self.gates = _Gates(comm, triple_provider())

    def sums(self, batch: torch.Tensor) -> torch.Tensor | None:
        """Steps 4-6 for a ``K x P`` 0/1 batch: ``[K, 2]`` (loss sum, correct) at rank 0."""
        from flai.mpc.crypten_adapter import MPCTensor, crypten

        coalitions = len(batch)
        weights = batch * self.samples  # step 4
        weights = weights / weights.sum(1, keepdim=True).clamp(min=1)
        z = self.M.matmul(weights.t()) + self.base.unsqueeze(1)
        rows = z.size(0)
        # Step 5. The sign bit and the labels are at scale 1, so the products are exact and
        # need no truncation (CrypTen keeps the other factor's scale).
        sign = MPCTensor.from_shares(self.gates.negative([z.share])[0], precision=0)
        y = self.labels.unsqueeze(1).expand(rows, coalitions)
        y_scaled = MPCTensor.from_shares(y.share * SCALE)
        sz, yz, sy = (crypten.stack([sign, y, sign]) * crypten.stack([z, z, y_scaled])).unbind(0)
        loss = z - sz - yz + _log1p_exp_negative(z - sz * 2)
        correct = y_scaled + MPCTensor.from_shares(sign.share * SCALE) - sy * 2
        per_row = crypten.stack([loss, correct]).permute(0, 2, 1).reshape(2 * coalitions, rows)
        ring = self.comm.reduce(per_row.matmul(self.mask).share, 0)  # step 6
        return decode(ring).view(2, coalitions).t() if self.rank == 0 else None


def _log1p_exp_negative(a):
    """``log(1 + e^(-a))`` for shared ``0 <= a < 128``.

    ``e^(-a) = (e^(-x))^64`` with ``x = a / 64``: the inner factor by its Taylor polynomial to
    the second order, ``1 - x + x^2/2`` (relative error ``a^3 / 24576``; at most 1 while
    ``x <= 2``), then 6 squarings. The squarings amplify the rounding of ``x`` (a few 2**-16)
    64 times: CrypTen's ``exp`` (``(1 - a/256)^256``) came out up to 1.2e-2 off per row and
    biased (the loss 5e-4 low on average); this is within 1.6e-3 per row, 3e-5 on average. Then
    ``log(1 + t)``, ``t`` in [0, 1], by the polynomial ``_LOG1P``.
    """
    from flai.mpc.crypten_adapter import MPCTensor, crypten

    x = a.div(64)
    t = 1 - x + x.square().div(2)
    for _ in range(6):
        t = t.square()
    t2 = t.square()
    low = crypten.stack([t, t2])
    t34 = low * t2
    t56 = low * t34[1]
    powers = crypten.cat([low, t34, t56])  # t^1 .. t^6
    # sum_k c_k t^k on the raw shares (products at scale 2**-32), then one truncation for all.
    weighted = (powers.share * encode(torch.from_numpy(_LOG1P)).view(-1, *[1] * a.dim())).sum(0)
    return MPCTensor.from_shares(weighted).div(SCALE)


def _broadcast_batch(comm, batch: torch.Tensor | None, providers: int) -> torch.Tensor | None:
    """Rank 0 sends the next batch (``K x P``, ``K = 0`` to stop); the others receive it."""
    size = torch.tensor([0 if batch is None else len(batch)], dtype=torch.int64)
    size = comm.broadcast(size, 0)
    if size.item() == 0:
        return None
    matrix = batch if batch is not None else torch.zeros(size.item(), providers, dtype=torch.int64)
    return comm.broadcast(matrix.contiguous(), 0)


def _agree(comm, digest: bytes) -> None:
    mine = torch.from_numpy(np.frombuffer(digest, dtype=np.int64).copy())
    if any(not torch.equal(mine, theirs) for theirs in comm.all_gather(mine)):
        raise UtilitySpecMismatch(f"rank {comm.get_rank()}: the parties hold different specs; "
                                  "nothing was shared")


def _check(spec: UtilitySpec, local: UtilityInput) -> None:
    real = len(local.labels)
    if local.staged.shape != (spec.width + 1,) or local.features.shape != (real, spec.width - 1):
        raise UtilityInputError(f"staged {tuple(local.staged.shape)} and features "
                                f"{tuple(local.features.shape)} do not fit {spec.width} parameters")
    if not (local.staged[-1] >= 1 and local.staged[-1] == local.staged[-1].round()):
        raise UtilityInputError(f"sample count {local.staged[-1].item()} is not a positive integer")
    if not 0 < real <= spec.rows:
        raise UtilityInputError(f"{real} validation rows, expected 1 to {spec.rows}")
    if not ((local.labels == 0) | (local.labels == 1)).all():
        raise UtilityInputError("labels must be 0 or 1")
    if not (torch.isfinite(local.staged).all() and torch.isfinite(local.features).all()):
        raise UtilityInputError("non-finite update or features")
