"""Secure combination of providers' partial aggregates, with disclosure control inside MPC.

Parties ``0..P``: rank 0, the aggregator, owns no data and alone receives the result;
provider ranks ``1..P`` each hold ``PartialVectors`` of one agreed shape: ``sums`` ``[G, W]``
(additive components of ``G`` groups), ``mins`` ``[G, A]`` and ``maxs`` ``[G, B]``. A provider
without a value for a MIN (MAX) slot holds the slot's declared upper (lower) bound, which
never wins a comparison. Every party calls ``secure_combine`` in the same session.

1. Provider ``i`` prepares ``S_i = r * sums_i + eta_i`` (``r``: public per-column powers of two
   that keep totals inside the fixed-point ring; ``eta_i``: its share of the DP noise, below)
   and ``E_i = [mins_i, -maxs_i]`` (a MAX is a MIN of negated values). Rank 0 holds zeros.
2. One pseudo-random zero-sharing (PRZS) covers ``[S | P x E]``: party ``j`` adds its own encoded
   ``S_j`` and its own row of the stacked ``E`` block to its share. The shares then sum to
   ``sum_i S_i`` and to each ``E_i`` (CrypTen's own sharing, ``z_j + [j = src] encode(x)``, for
   all sources at once). Nothing is sent.
3. Extrema: a tournament over providers, ``m = b + (a - b) [a < b]``, ``ceil(log2 P)`` levels of
   one batched comparison and one multiplication each.
4. Suppression: ``keep_g = [n_g >= k - 1/2]`` on the (noisy) COUNT(*) of group ``g``, and
   ``nonempty_gj = [n_gj >= 1/2]`` on the count behind each MIN/MAX; batched with the
   tournament's first comparison.
5. ``out = [S keep | (m + eta_E) keep nonempty]``. The bits are shared at scale 1, so every
   product is exact in the ring (no truncation, no range loss).
6. ``out`` is revealed to rank 0 only, decoded with ``flai.mpc.fixed_point.decode`` and divided
   by ``r``. A suppressed group is revealed as zeros: its values never leave the shares.
   Rank 0 learns which groups were released (and so how many were suppressed), nothing else.

DP noise, distributed Gaussian: the plan gives each column a total standard deviation
``sigma_j`` (analytic Gaussian mechanism over the L2 sensitivity of one row). Each of the ``P``
providers adds ``eta_ij ~ N(0, sigma_j**2 / (P - 1))`` locally, so the noise of any ``P - 1``
providers alone is ``N(0, sigma_j**2)``: a provider that subtracts its own draw, and the
aggregator, who knows none, each still face the full noise; the total is
``N(0, sigma_j**2 P / (P - 1))``. Suppression tests the noisy count, so it is covered too.
Semi-honest, non-colluding parties; multiplication triples come from CrypTen's trusted first
party (rank 0), as everywhere in FLAI.
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
    min_count_columns: tuple[int, ...]  # sums column counting each MIN slot's values
    max_count_columns: tuple[int, ...]
    min_group_size: int
    max_rows: int  # the total row count the ring scaling was chosen for
    sum_noise: tuple[float, ...] | None = None  # total sigma per sums column; None: no DP
    min_noise: tuple[float, ...] = ()
    max_noise: tuple[float, ...] = ()
    count_column: int = 0  # COUNT(*), which suppression tests

    @property
    def extrema(self) -> int:
        return len(self.min_count_columns) + len(self.max_count_columns)


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
    sums_shared = total[:split].view(cells, width + extrema)
    level = total[split:].view(providers, cells, extrema)

    count_columns = [spec.count_column, *spec.min_count_columns, *spec.max_count_columns]
    counts = sums_shared[:, count_columns]
    thresholds = torch.tensor([spec.min_group_size - 0.5] + [0.5] * extrema, dtype=torch.float64)
    thresholds *= torch.tensor([spec.sum_scale[c] for c in count_columns], dtype=torch.float64)
    pending = counts - thresholds.expand(cells, extrema + 1)
    below = None
    while pending is not None or level.size(0) > 1:
        half = level.size(0) // 2
        differences = [level[:half] - level[half:2 * half]] if half else []
        bits = _negative(crypten, differences + ([pending] if pending is not None else []))
        if pending is not None:
            below, pending = bits.pop(), None
        if half:
            a, b = level[:half], level[half:2 * half]
            chosen = b + (a - b) * bits[0]
            level = crypten.cat([chosen, level[2 * half:]]) if level.size(0) % 2 else chosen

    keep = 1 - below[:, [0] * width]
    values = sums_shared[:, :width]
    if extrema:
        keep_extrema = (1 - below[:, [0] * extrema]) * (1 - below[:, 1:])
        values = crypten.cat([values, level[0] + sums_shared[:, width:]], dim=1)
        keep = crypten.cat([keep, keep_extrema], dim=1)
    ring = (values * keep).reveal(dst=0)
    if rank != 0:
        return None
    revealed = decode(ring).numpy()
    totals = revealed[:, :width] / np.asarray(spec.sum_scale)
    minima = len(spec.min_count_columns)
    return CombinedVectors(totals, revealed[:, width:width + minima],
                           -revealed[:, width + minima:], totals[:, spec.count_column] >= 0.25)


def _negative(crypten, tensors: list) -> list:
    """``[t < 0]`` for each shared tensor, in one batched comparison; bits at scale 1."""
    flat = crypten.cat([t.flatten() for t in tensors])
    bits = flat < 0
    out, start = [], 0
    for t in tensors:
        out.append(bits[start:start + t.nelement()].view(t.size()))
        start += t.nelement()
    return out


def _check(spec: CombineSpec, local: PartialVectors, providers: int) -> None:
    shapes = {"sums": (spec.cells, spec.sum_width),
              "mins": (spec.cells, len(spec.min_count_columns)),
              "maxs": (spec.cells, len(spec.max_count_columns))}
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

    >>> spec = CombineSpec(2, 1, (1.0,), (0,), (), min_group_size=2, max_rows=100)
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
    minima = sums[:, list(spec.min_count_columns)] >= 0.5
    maxima = sums[:, list(spec.max_count_columns)] >= 0.5
    return CombinedVectors(sums * released[:, None], mins * (minima & released[:, None]),
                           maxs * (maxima & released[:, None]), released)
