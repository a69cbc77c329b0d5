"""Secure sum with a single pseudo-random zero-sharing (PRZS).

Parties ``0..P-1``; party ``i`` holds a tensor ``x_i`` of one agreed shape (a party without
data holds zeros). Only party ``dst`` learns ``sum_i x_i``.

1. Every party draws its share ``z_i`` of one zero-sharing, ``sum_i z_i = 0 (mod 2**64)``.
   CrypTen's PRZS needs no communication: ``z_i = g(s_i) - g(s_(i+1))`` from the two seeds
   party ``i`` shares with its ring neighbours.
2. Party ``i`` masks its encoded value: ``m_i = z_i + encode(x_i)`` (mod 2**64).
3. The masked values are reduced to ``dst``: ``sum_i m_i = encode(sum_i x_i)`` (mod 2**64).
4. ``dst`` decodes (``flai.mpc.fixed_point.decode``).

``m_i`` is uniform to anyone who lacks seed ``s_(i+1)``. With at least two parties besides
``dst``, ``dst`` holds at most one of the two seeds masking each ``m_i``, so it learns the sum
and nothing else (semi-honest, non-colluding parties). One PRZS for the whole sum costs one
round of communication, against one sharing per source for ``crypten.cryptensor``.
"""

from __future__ import annotations

import torch

from flai.mpc.fixed_point import decode, encode


def secure_sum(value: torch.Tensor, dst: int = 0) -> torch.Tensor | None:
    """Sum ``value`` over all parties of the current session; ``dst`` gets it, others None."""
    from flai.mpc.crypten_adapter import ArithmeticSharedTensor, communicator

    masked = ArithmeticSharedTensor.PRZS(value.shape)
    masked.share += encode(value)
    ring = masked.reveal(dst=dst)
    return decode(ring) if communicator().get_rank() == dst else None
