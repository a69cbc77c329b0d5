"""The fixed-point encoding of every value that enters MPC, and its decode. One place.

A real ``x`` is carried as the ring element ``round(x * 2**16)`` in Z_(2**64), stored as int64
(CrypTen's default precision). A sum over parties is exact in the ring and decodes correctly
while ``|sum| < MAX_ABS``, about 1.4e14; the rounding error is at most ``2**-17`` per party.

CrypTen 0.4.1's own ``FixedPointEncoder.decode`` maps some negative values 1.0 too low
(shared/STACK.md), so the decode here converts the signed int64 directly to float64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISION_BITS = 16
SCALE = 2**PRECISION_BITS
MAX_ABS = 2.0 ** (63 - PRECISION_BITS)


class FixedPointRangeError(ValueError):
    """A value is too large in magnitude for the fixed-point ring."""


def encode(values: torch.Tensor) -> torch.Tensor:
    """Round ``values`` onto the fixed-point grid; refuse NaN, inf and out-of-range values.

    >>> import torch
    >>> encode(torch.tensor([1.5, -0.25])).tolist()
    [98304, -16384]
    """
    import torch  # here, not at the top: the planner needs MAX_ABS, not torch

    values = values.to(torch.float64)
    if not torch.isfinite(values).all():
        raise FixedPointRangeError("NaN or infinite value cannot be encoded")
    largest = values.abs().max().item() if values.numel() else 0.0
    if largest >= MAX_ABS:
        raise FixedPointRangeError(f"|value| {largest:.3g} exceeds the ring range {MAX_ABS:.3g}")
    return torch.round(values * SCALE).to(torch.int64)


def decode(ring: torch.Tensor) -> torch.Tensor:
    """Map signed ring elements back to float64.

    >>> import torch
    >>> decode(torch.tensor([98304, -16384, -65535])).tolist()
    [1.5, -0.25, -0.9999847412109375]
    """
    import torch

    return ring.to(torch.float64) / SCALE
