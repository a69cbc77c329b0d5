"""Secure combination of providers' partial aggregates, with disclosure control inside MPC.

Parties ``0..P``: rank 0, the aggregator, owns no data and alone receives the result;
provider ranks ``1..P`` each hold ``PartialVectors`` of one agreed shape: ``sums`` ``[G, W]``
(additive components of ``G`` groups), ``mins`` ``[G, A]`` and ``maxs`` ``[G, B]``. A provider
without a value for a MIN (MAX) slot holds the slot's declared upper (lower) bound, which
never wins a comparison. Every party calls ``secure_combine`` in the same session.

1. Provider ``i`` prepares ``S_i = r * sums_i + eta_i`` (``r``: public per-column powers of two
   that keep totals inside the fixed-point ring; ``eta_i``: its share of the DP noise, below)
   and ``V_i = [mins_i, -maxs_i]`` (a MAX is a MIN of negated values). Rank 0 holds zeros.
2. One pseudo-random zero-sharing (PRZS) covers ``[S | V_1 .. V_P]``: party ``j`` adds its own
   encoded ``S_j`` and its own ``V_j`` to its share. The shares then sum to ``sum_i S_i`` and to
   each ``V_i`` (CrypTen's own sharing, ``z_j + [j = src] encode(x)``, for all sources at
   once). Nothing is sent.
3. One batched comparison (carry-save sign extraction, ``_negative``; bits at scale 1) computes
   ``keep_g = [n_g >= k - 1/2]`` on each group's (noisy) COUNT(*) and, for every pair of
   providers ``i < j``, ``d_ij = [V_j < V_i]``.
4. Provider ``i`` holds the minimum iff it beats every other (ties to the lower rank):
   ``w_i = keep * prod_{j<i} d_ji * prod_{j>i} (1 - d_ij)``, a product of ``P`` bits computed
   in ``ceil(log2 P)`` rounds of bit multiplications.
5. One multiplication round: ``[S keep | w_i V_i]``; then ``min = sum_i w_i V_i`` (local).
   Every product has a scale-1 bit as a factor, so it is exact in the ring.
6. The result is revealed to rank 0 only, decoded with ``flai.mpc.fixed_point.decode`` and
   divided by ``r``. A suppressed group is revealed as zeros: its values never leave the
   shares. Rank 0 learns which groups were released (and so how many were suppressed).
   A released group whose MIN/MAX argument is all NULL reveals the slot's public bound; the
   revealed count of that argument tells finalise to return NULL.

DP noise, distributed Gaussian: the plan gives each column a total standard deviation
``sigma_j`` (analytic Gaussian mechanism over the L2 sensitivity of one row). Each of the ``P``
providers adds ``eta_ij ~ N(0, sigma_j**2 / (P - 1))`` locally, so the noise of any ``P - 1``
providers alone is ``N(0, sigma_j**2)``: a provider that subtracts its own draw, and the
aggregator, who knows none, each still face the full noise; the total is
``N(0, sigma_j**2 P / (P - 1))``. MIN/MAX noise is shared the same way (extra columns of
``S``) and added before masking. Suppression tests the noisy count, so it is covered too.

Threat model: semi-honest, non-colluding parties. Steps 3-5 multiply, so they need Beaver
triples from CrypTen's tuple provider. With the default trusted *first* party (TFP), rank 0
generates the triples, and could decode every value that is multiplied or compared (counts,
each provider's MIN/MAX), so rank 0 must then be trusted not to look. With CrypTen's trusted
*third* party (``crypten.cfg.mpc.provider = "TTP"``, a dealer process that computes nothing
and sees nothing revealed), rank 0 learns only the output. The protocol is the same in both.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from flai.crypten_compat import load_crypten
from flai.mpc.fixed_point import PRECISION_BITS, decode, encode


class CombineInputError(ValueError):
    """A party's input does not fit the agreed combination (shape, role, rows, noise)."""


@dataclass(frozen=True)
class PartialVectors:
    """One provider's partial aggregates over the whole declared group domain. Only for MPC."""

    sums: np.ndarray  # [cells, sum_width] float64
    mins: np.ndarray  # [cells, A]; the slot's upper bound where the provider has no value
    maxs: np.ndarray  # [cells, B]; the slot's lower bound where the provider has no value


@dataclass(frozen=True)
class CombineSpec:
    """What every party agrees on before a combination: shapes, scaling, k, noise."""

    cells: int
    sum_width: int
    sum_scale: tuple[float, ...]  # r_j, powers of two
    minima: int  # MIN slots per group
    maxima: int  # MAX slots per group
    min_group_size: int
    max_rows: int  # the total row count the ring scaling was chosen for
    sum_noise: tuple[float, ...] | None = None  # total sigma per sums column; None: no DP
    min_noise: tuple[float, ...] = ()
    max_noise: tuple[float, ...] = ()
    count_column: int = 0  # COUNT(*), which suppression tests

    @property
    def extrema(self) -> int:
        return self.minima + self.maxima


@dataclass(frozen=True)
class CombinedVectors:
    """What rank 0 learns: totals of released groups (zeros elsewhere), and which were released."""

    sums: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    released: np.ndarray  # bool per cell

    @property
    def suppressed(self) -> int:
        """Cells not released: below the group-size threshold, empty ones included."""
        return int((~self.released).sum())


def secure_combine(spec: CombineSpec, local: PartialVectors | None) -> CombinedVectors | None:
    """Run the protocol above as this party; rank 0 passes ``None`` and gets the result."""
    crypten = load_crypten()
    from crypten import communicator
    from crypten.mpc import MPCTensor
    from crypten.mpc.primitives import ArithmeticSharedTensor

    rank, world = communicator.get().get_rank(), communicator.get().get_world_size()
    providers = world - 1
    if providers < 1 or (rank == 0) != (local is None):
        raise CombineInputError(f"rank {rank} of {world}: rank 0 brings no data, every "
                                "provider rank brings its PartialVectors")
    cells, width, extrema = spec.cells, spec.sum_width, spec.extrema
    sums = np.zeros((cells, width + extrema))
    stacked = np.zeros((providers, cells, extrema))
    if local is not None:
        _check(spec, local, providers)
        sums[:, :width] = local.sums * np.asarray(spec.sum_scale)
        stacked[rank - 1] = np.concatenate([local.mins, -local.maxs], axis=1)
        if spec.sum_noise is not None:
            sums += _noise_share(spec, providers)
    flat = torch.from_numpy(np.concatenate([sums.ravel(), stacked.ravel()]))
    shared = ArithmeticSharedTensor.PRZS(flat.shape)
    shared.share += encode(flat)
    total = MPCTensor.from_shares(shared.share, precision=PRECISION_BITS)
    split = cells * (width + extrema)
    totals = total[:split].view(cells, width + extrema)
    values = total[split:].view(providers, cells, extrema)

    # Step 3: one batched comparison for suppression and every pair of providers.
    threshold = (spec.min_group_size - 0.5) * spec.sum_scale[spec.count_column]
    pairs = [(i, j) for i in range(providers) for j in range(i + 1, providers)] if extrema else []
    differences = [totals[:, spec.count_column] - threshold]
    differences += [values[j] - values[i] for i, j in pairs]
    below, *smaller = _negative(crypten, differences)
    keep = 1 - below

    # Step 4: w_i = keep * prod(i beats j), a tree of bit products.
    if extrema:
        factors = [[keep.view(cells, 1).expand(cells, extrema)] for _ in range(providers)]
        for (i, j), d in zip(pairs, smaller):
            factors[j].append(d)
            factors[i].append(1 - d)
        level = crypten.stack([crypten.stack(f) for f in factors], dim=1)  # [factor, P, G, E]
        while level.size(0) > 1:
            half = level.size(0) // 2
            product = level[:half] * level[half:2 * half]
            level = crypten.cat([product, level[2 * half:]]) if level.size(0) % 2 else product
        winners = level[0]

    # Step 5: one multiplication round, then the minima by local sums.
    masks = keep.view(cells, 1).expand(cells, width + extrema)
    if extrema:
        masked = crypten.cat([totals.flatten(), values.flatten()]) * crypten.cat(
            [masks.flatten(), winners.flatten()])
        kept = masked[:split].view(cells, width + extrema)
        minima = masked[split:].view(providers, cells, extrema).sum(0) + kept[:, width:]
        out = crypten.cat([kept[:, :width], minima], dim=1)
    else:
        out = totals * masks
    ring = out.reveal(dst=0)
    if rank != 0:
        return None
    revealed = decode(ring).numpy()
    result = revealed[:, :width] / np.asarray(spec.sum_scale)
    return CombinedVectors(result, revealed[:, width:width + spec.minima],
                           -revealed[:, width + spec.minima:], result[:, spec.count_column] >= 0.25)


def _negative(crypten, tensors: list) -> list:
    """``[t < 0]`` for each shared tensor, in one batched comparison; bits at scale 1.

    The sign of ``x = sum_j x_j`` (party ``j`` holds ``x_j``) is the top bit of a binary sum.
    CrypTen's own ``_ltz`` adds the ``n`` binary-shared ``x_j`` with a tree of full adders,
    ``ceil(log2 n)`` adders of 7 AND rounds each. Here carry-save adders first reduce the
    ``n`` addends to two (``a + b + c = (a ^ b ^ c) + (maj(a, b, c) << 1)``, one AND round per
    level, ``maj = ((a ^ c) & (b ^ c)) ^ c``), then one full adder: for 5 parties 3 + 7 + 1
    rounds instead of 21 + 1, the same sharing and the same security.
    """
    from crypten import communicator
    from crypten.mpc import MPCTensor
    from crypten.mpc.primitives import BinarySharedTensor, circuit
    from crypten.mpc.primitives.beaver import B2A_single_bit

    flat = crypten.cat([t.flatten() for t in tensors])
    share = flat._tensor.share
    addends = BinarySharedTensor.stack([BinarySharedTensor(share, src=party)
                                        for party in range(communicator.get().get_world_size())])
    while addends.size(0) > 2:
        n = addends.size(0) // 3
        a, b, c = addends[:n], addends[n:2 * n], addends[2 * n:3 * n]
        parts = [a ^ b ^ c, (((a ^ c) & (b ^ c)) ^ c) << 1, addends[3 * n:]]
        addends = parts[0].shallow_copy()
        addends.share = torch.cat([part.share for part in parts])
    top = (circuit.add(addends[0], addends[1]) >> 63) & 1
    bits = MPCTensor.from_shares(B2A_single_bit(top).share, precision=0)
    out, start = [], 0
    for t in tensors:
        out.append(bits[start:start + t.nelement()].view(t.size()))
        start += t.nelement()
    return out


def _check(spec: CombineSpec, local: PartialVectors, providers: int) -> None:
    shapes = {"sums": (spec.cells, spec.sum_width),
              "mins": (spec.cells, spec.minima),
              "maxs": (spec.cells, spec.maxima)}
    for name, shape in shapes.items():
        array = getattr(local, name)
        if array.shape != shape or not np.isfinite(array).all():
            raise CombineInputError(f"{name} has shape {array.shape}, expected {shape}, all finite")
    rows = float(local.sums[:, spec.count_column].sum())
    if rows * providers > spec.max_rows:
        raise CombineInputError(f"{rows:.0f} local rows x {providers} providers exceeds the "
                                f"{spec.max_rows} rows the fixed-point scaling allows")


def _noise_share(spec: CombineSpec, providers: int) -> np.ndarray:
    """This provider's draw: N(0, sigma_j**2 / (P - 1)) per cell and column, scaled like S."""
    sigma = np.concatenate([np.asarray(spec.sum_noise) * np.asarray(spec.sum_scale),
                            spec.min_noise, spec.max_noise])
    generator = np.random.default_rng(secrets.randbits(128))
    return generator.standard_normal((spec.cells, sigma.size)) * sigma / math.sqrt(max(providers - 1, 1))


def combine_plaintext(spec: CombineSpec, partials: Sequence[PartialVectors]) -> CombinedVectors:
    """The protocol's result computed in the clear, without noise: the reference for tests.

    >>> spec = CombineSpec(2, 1, (1.0,), 1, 0, min_group_size=2, max_rows=100)
    >>> a = PartialVectors(np.array([[1.0], [3.0]]), np.array([[5.0], [2.0]]), np.zeros((2, 0)))
    >>> b = PartialVectors(np.array([[0.0], [1.0]]), np.array([[9.0], [1.0]]), np.zeros((2, 0)))
    >>> combined = combine_plaintext(spec, [a, b])
    >>> combined.released.tolist(), combined.sums.tolist(), combined.mins.tolist()
    ([False, True], [[0.0], [4.0]], [[0.0], [1.0]])
    """
    if spec.sum_noise is not None:
        raise CombineInputError("the plaintext reference adds no noise; plan without epsilon")
    for partial in partials:
        _check(spec, partial, len(partials))
    sums = np.sum([p.sums for p in partials], axis=0)
    mins = np.min([p.mins for p in partials], axis=0)
    maxs = np.max([p.maxs for p in partials], axis=0)
    released = sums[:, spec.count_column] >= spec.min_group_size - 0.5
    keep = released[:, None]
    return CombinedVectors(sums * keep, mins * keep, maxs * keep, released)
