"""Secure combination of providers' partial aggregates, with disclosure control inside MPC.

Parties ``0..P``: rank 0, the aggregator, owns no data and alone receives the result;
provider ranks ``1..P`` each hold ``PartialVectors`` of one agreed shape: ``sums`` ``[G, W]``
(additive components of ``G`` groups; column 0 is COUNT(*)), ``mins`` ``[G, A]`` and ``maxs``
``[G, B]``. A provider without a value for a MIN (MAX) slot holds the slot's declared upper
(lower) bound, which never wins a comparison. Every party calls ``secure_combine`` in the
same session, each with the ``CombineSpec`` of the plan it derived itself.

0. The parties exchange the digest of their plans (``spec.digest``) and stop, before any
   share exists, unless all are equal.
1. Provider ``i`` prepares ``S_i = r * sums_i + eta_i`` (``r``: public per-column powers of two
   that keep totals inside the fixed-point ring; ``eta_i``: its share of the DP noise, below)
   and ``V_i = e * [mins_i, -maxs_i]`` (a MAX is a MIN of negated values; ``e``: per-slot
   powers of two that spend the ring's precision). Rank 0 holds zeros.
2. One pseudo-random zero-sharing (PRZS) covers ``[S | V_1 .. V_P]``: party ``j`` adds its own
   encoded ``S_j`` and its own ``V_j`` to its share. The shares then sum to ``sum_i S_i`` and to
   each ``V_i`` (CrypTen's own sharing, ``z_j + [j = src] encode(x)``, for all sources at
   once). Nothing is sent.
3. One batched comparison (carry-save sign extraction, ``_Gates.negative``; bits at scale 1)
   computes, for every support column ``c`` (a count of the rows feeding some column),
   ``k_c = [n_c >= k - 1/2]`` on its (noisy) total, and, for every pair of providers
   ``i < j``, ``d_ij = [V_j < V_i]``. The group's bit is ``keep = k_0`` (COUNT(*)); one round
   of bit products gives ``m_c = keep * k_c``.
4. Provider ``i`` holds the minimum iff it beats every other (ties to the lower rank):
   ``w_i = keep * prod_{j<i} d_ji * prod_{j>i} (1 - d_ij)``, a product of ``P`` bits computed
   in ``ceil(log2 P)`` rounds of bit multiplications.
5. One multiplication round: ``[S_j m_{support(j)} | w_i V_i]``; then ``min = sum_i w_i V_i``.
   Every product has a scale-1 bit as a factor, so it is exact in the ring.
6. The result and the bits ``m_c`` are revealed to rank 0 only; values are decoded with
   ``flai.mpc.fixed_point.decode`` and divided by ``r`` (or ``e``). A withheld column is
   revealed as zeros: its values never leave the shares. Rank 0 learns which groups and
   columns were released. A released group whose MIN/MAX argument is all NULL reveals the
   slot's public bound; the revealed count of that argument tells finalise to return NULL.

DP noise, distributed Gaussian: the plan gives each column a total standard deviation
``sigma_j``. Each of the ``P`` providers adds ``eta_ij ~ N(0, sigma_j**2 / (P - 1))`` locally,
so the noise of any ``P - 1`` providers alone is ``N(0, sigma_j**2)``: a provider that
subtracts its own draw, and the aggregator, who knows none, each still face the full noise;
the total is ``N(0, sigma_j**2 P / (P - 1))``. The support counts are noised like every other
column, so withholding is decided on noisy counts. Under DP the plan has no MIN/MAX slots
(those come from noisy histograms).

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

import numpy as np
import torch
from torch.distributed import ReduceOp

from flai.mpc.fixed_point import decode, encode
from flai.query_types import CombinedVectors, CombineSpec, PartialVectors


class CombineInputError(ValueError):
    """A party's input does not fit the agreed combination (shape, role, rows, noise)."""


class PlanMismatch(CombineInputError):
    """The parties of a combination did not all derive the same plan."""


def secure_combine(spec: CombineSpec, local: PartialVectors | None) -> CombinedVectors | None:
    """Run the protocol above as this party; rank 0 passes ``None`` and gets the result."""
    from flai.mpc.crypten_adapter import ArithmeticSharedTensor, communicator, triple_provider

    gates = _Gates(communicator(), triple_provider())
    rank, providers = gates.rank, gates.world - 1
    if providers < 1 or (rank == 0) != (local is None):
        raise CombineInputError(f"rank {rank} of {gates.world}: rank 0 brings no data, every "
                                "provider rank brings its PartialVectors")
    gates.agree(spec.digest)  # step 0
    cells, width, extrema = spec.cells, spec.sum_width, spec.extrema
    sums = np.zeros((cells, width + extrema))
    stacked = np.zeros((providers, cells, extrema))
    if local is not None:
        _check(spec, local, providers)
        sums[:, :width] = local.sums * np.asarray(spec.sum_scale)
        stacked[rank - 1] = np.concatenate([local.mins, -local.maxs], axis=1) * spec.extremum_scales
        if spec.sum_noise is not None:
            sums[:, :width] += _noise_share(spec, providers)
    flat = torch.from_numpy(np.concatenate([sums.ravel(), stacked.ravel()]))
    total = ArithmeticSharedTensor.PRZS(flat.shape).share + encode(flat)
    split = cells * (width + extrema)
    totals = total[:split].view(cells, width + extrema)
    values = total[split:].view(providers, cells, extrema)

    # Step 3: one batched comparison for every support count and every pair of providers.
    tested = spec.gates
    differences = [gates.add_public(totals[:, c], -encode(torch.tensor(
        (spec.min_group_size - 0.5) * spec.sum_scale[c]))) for c in tested]
    pairs = [(i, j) for i in range(providers) for j in range(i + 1, providers)] if extrema else []
    differences += [values[j] - values[i] for i, j in pairs]
    below = gates.negative(differences)
    passed = [gates.add_public(-bit, 1) for bit in below[:len(tested)]]
    smaller = below[len(tested):]
    keep = passed[0]
    if len(tested) > 1:  # a column's support must pass, and its group's COUNT(*)
        rest = gates.multiply(torch.stack(passed[1:]), keep.expand(len(tested) - 1, cells))
        passed = [keep, *rest.unbind(0)]
    released = torch.stack(passed, dim=1)  # [G, gates]

    # Step 4: w_i = keep * prod(i beats j), a tree of bit products.
    if extrema:
        factors = [[keep.view(cells, 1).expand(cells, extrema)] for _ in range(providers)]
        for (i, j), d in zip(pairs, smaller):
            factors[j].append(d)
            factors[i].append(gates.add_public(-d, 1))
        level = torch.stack([torch.stack(f) for f in factors], dim=1)  # [factor, P, G, E]
        while level.size(0) > 1:
            half = level.size(0) // 2
            product = gates.multiply(level[:half], level[half:2 * half])
            level = torch.cat([product, level[2 * half:]]) if level.size(0) % 2 else product
        winners = level[0]

    # Step 5: one multiplication round, then the minima by local sums.
    position = {c: g for g, c in enumerate(tested)}
    column_gates = [position[c] for c in spec.column_supports]
    masks = torch.cat([released[:, column_gates], keep.view(cells, 1).expand(cells, extrema)], dim=1)
    if extrema:
        masked = gates.multiply(total, torch.cat([masks.flatten(), winners.flatten()]))
        kept = masked[:split].view(cells, width + extrema)
        minima = masked[split:].view(providers, cells, extrema).sum(0) + kept[:, width:]
        out = torch.cat([kept[:, :width], minima], dim=1)
    else:
        out = gates.multiply(totals, masks.contiguous())
    ring = gates.reveal_to_first(torch.cat([out, released], dim=1))
    if rank != 0:
        return None
    revealed = decode(ring[:, :width + extrema]).numpy()
    bits = ring[:, width + extrema:].numpy() == 1
    extremes = revealed[:, width:] / spec.extremum_scales
    return CombinedVectors(revealed[:, :width] / np.asarray(spec.sum_scale),
                           extremes[:, :spec.minima], -extremes[:, spec.minima:],
                           bits[:, 0], bits[:, column_gates])


class _Gates:
    """The protocol's operations on raw int64 shares, with CrypTen's tuple provider and
    communicator underneath: additive shares (sums modulo ``2**64``) and XOR shares.

    CrypTen's ``MPCTensor`` and its share wrappers cost more CPU than the arithmetic itself
    on the few hundred values of a query (each one reads CrypTen's omegaconf config, about
    18 µs a read), and on a machine shared by every party that CPU is the query's latency.
    Every product here has a 0/1 factor at scale 1, so none needs truncation.
    """

    def __init__(self, communicator, provider) -> None:
        self.communicator, self.provider = communicator, provider
        self.rank, self.world = communicator.get_rank(), communicator.get_world_size()

    def add_public(self, share: torch.Tensor, value) -> torch.Tensor:
        """Shares of ``x + value`` for a public ``value`` (ring units): rank 0 adds it."""
        return share + value if self.rank == 0 else share

    def multiply(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shares of ``x * y`` in the ring, elementwise (Beaver)."""
        a, b, c = (t.share for t in self.provider.generate_additive_triple(x.size(), y.size(), "mul"))
        epsilon, delta = self._open([x - a, y - b], ReduceOp.SUM)
        return self.add_public(c + epsilon * b + a * delta, epsilon * delta)

    def negative(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Additive shares of ``[t < 0]`` for each shared tensor, in one batched comparison.

        The sign of ``x = sum_j x_j`` (party ``j`` holds ``x_j``) is the top bit of a binary
        sum. CrypTen's own ``_ltz`` adds the ``n`` binary-shared ``x_j`` with a tree of full
        adders, ``ceil(log2 n)`` adders of 7 AND rounds each. Here carry-save adders first
        reduce the ``n`` addends to two (``a + b + c = (a ^ b ^ c) + (maj(a, b, c) << 1)``, one
        AND round per level, ``maj = ((a ^ c) & (b ^ c)) ^ c``), then a Kogge-Stone carry tree
        of 1 + 6 AND rounds gives the carry into the top bit: for 5 parties 3 + 7 + 1 rounds
        instead of 21 + 1, the same sharing and the same security. The Beaver triples of the
        whole circuit come from one request to the tuple provider.
        """
        from flai.mpc.crypten_adapter import BinarySharedTensor

        flat = torch.cat([t.flatten() for t in tensors])
        size = (_and_gates(self.world) * flat.numel(),)
        triples = [t.share for t in self.provider.generate_binary_triple(size, size)]
        used = 0

        def and_(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            nonlocal used
            a, b, c = (t[used:used + x.numel()].view(x.size()) for t in triples)
            used += x.numel()
            epsilon, delta = self._open([x ^ a, y ^ b], ReduceOp.BXOR)
            z = c ^ (epsilon & b) ^ (a & delta)
            return z ^ (epsilon & delta) if self.rank == 0 else z

        addends = BinarySharedTensor.PRZS((self.world, flat.numel())).share
        addends[self.rank] ^= flat  # row j: an XOR sharing of party j's additive share
        while addends.size(0) > 2:
            n = addends.size(0) // 3
            a, b, c = addends[:n], addends[n:2 * n], addends[2 * n:3 * n]
            addends = torch.cat([a ^ b ^ c, (and_(a ^ c, b ^ c) ^ c) << 1, addends[3 * n:]])
        x, y = addends
        generate, propagate = and_(x, y), x ^ y
        for shift in (1, 2, 4, 8, 16, 32):  # generate[i]: the carry out of bits 0..i
            both = and_(torch.stack([propagate, propagate]),
                        torch.stack([generate << shift, propagate << shift]))
            generate, propagate = generate ^ both[0], both[1]
        if used != triples[0].numel():
            raise RuntimeError(f"the circuit used {used} of {triples[0].numel()} Beaver triples")
        bits = self._to_additive(((x ^ y ^ (generate << 1)) >> 63) & 1)
        return [part.view(t.size()) for part, t in zip(bits.split([t.numel() for t in tensors]), tensors)]

    def agree(self, digest: bytes) -> None:
        """Raise ``PlanMismatch`` unless every party holds the same 32-byte ``digest``."""
        mine = torch.from_numpy(np.frombuffer(digest, dtype=np.int64).copy())
        if any(not torch.equal(mine, theirs) for theirs in self.communicator.all_gather(mine)):
            raise PlanMismatch(f"rank {self.rank}: the parties derived different plans; "
                               "nothing was shared")

    def reveal_to_first(self, share: torch.Tensor) -> torch.Tensor | None:
        """The shared value at rank 0 (as a ring element); None elsewhere."""
        return self.communicator.reduce(share, 0)

    def _to_additive(self, bit: torch.Tensor) -> torch.Tensor:
        """Additive shares of an XOR-shared bit, through a random bit shared both ways."""
        r_additive, r_binary = self.provider.B2A_rng(bit.size())
        (z,) = self._open([bit ^ r_binary.share], ReduceOp.BXOR)  # bit XOR r: public, uniform
        return self.add_public(r_additive.share * (1 - 2 * z), z)  # r XOR z = r + z - 2 r z

    def _open(self, shares: list[torch.Tensor], op) -> list[torch.Tensor]:
        return self.communicator.all_reduce(shares, op=op, batched=True)


def _and_gates(parties: int) -> int:
    """AND gates per compared value in ``_Gates.negative``: carry-save levels, 1 + 6 x 2."""
    gates = 0
    while parties > 2:
        gates += parties // 3
        parties -= parties // 3
    return gates + 1 + 6 * 2


def _check(spec: CombineSpec, local: PartialVectors, providers: int) -> None:
    shapes = {"sums": (spec.cells, spec.sum_width),
              "mins": (spec.cells, spec.minima),
              "maxs": (spec.cells, spec.maxima)}
    for name, shape in shapes.items():
        array = getattr(local, name)
        if array.shape != shape or not np.isfinite(array).all():
            raise CombineInputError(f"{name} has shape {array.shape}, expected {shape}, all finite")
    rows = float(local.sums[:, 0].sum())
    if rows * providers > spec.max_rows:
        raise CombineInputError(f"the local rows x {providers} providers exceed the "
                                f"{spec.max_rows} rows the fixed-point scaling allows")


def _noise_share(spec: CombineSpec, providers: int) -> np.ndarray:
    """This provider's draw: N(0, sigma_j**2 / (P - 1)) per cell and column, scaled like S."""
    sigma = np.asarray(spec.sum_noise) * np.asarray(spec.sum_scale)
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
    passed = sums >= spec.min_group_size - 0.5
    released = passed[:, 0]
    columns = passed[:, list(spec.column_supports)] & released[:, None]
    keep = released[:, None]
    return CombinedVectors(sums * columns, mins * keep, maxs * keep, released, columns)
