"""Calibrating the Gaussian noise of a DP release, and what a release disclosed.

One row changes exactly one group's components: each additive column ``j`` by at most its
bound ``b_j`` (1 for counts, ``max|x|`` for sums, the half-range squared for centred squares),
a whole histogram by one bin, a MIN/MAX by at most its declared range. Scaling every column
by ``1 / b_j`` gives a vector of L2 sensitivity ``sqrt(m)`` (``m``: non-histogram columns +
histograms + MIN/MAX slots). The analytic Gaussian mechanism (Balle & Wang, ICML 2018,
Theorem 8) gives the smallest ``sigma`` for which ``N(0, sigma**2)`` on that vector is
``(epsilon, delta)``-DP, for any ``epsilon > 0``: the least ``sigma`` with

    Phi(D / (2 sigma) - epsilon sigma / D) - e**epsilon Phi(-D / (2 sigma) - epsilon sigma / D) <= delta

Column ``j`` then gets ``sigma_j = sigma * b_j``. How the noise is split among providers is
``flai.mpc.secure_combine``'s business. Suppression, finalise, HAVING and ORDER BY are
post-processing of the noisy release and cost no extra budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """The least ``sigma`` making the Gaussian mechanism ``(epsilon, delta)``-DP.

    >>> round(analytic_gaussian_sigma(1.0, 1e-5), 2)  # the classic bound would give 4.84
    3.73
    """
    if not (epsilon > 0 and 0 < delta < 1 and sensitivity > 0):
        raise ValueError(f"need epsilon > 0, 0 < delta < 1, sensitivity > 0; got "
                         f"{epsilon}, {delta}, {sensitivity}")

    def privacy_loss(sigma: float) -> float:
        a = sensitivity / (2 * sigma)
        b = epsilon * sigma / sensitivity
        tail = _log_phi(-a - b) + epsilon
        return _phi(a - b) - (math.exp(tail) if tail > -745 else 0.0)

    low, high = 1e-6 * sensitivity, sensitivity
    while privacy_loss(high) > delta:
        low, high = high, 2 * high
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if privacy_loss(middle) > delta else (low, middle)
    return high


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _log_phi(x: float) -> float:
    value = _phi(x)
    if value > 0:
        return math.log(value)
    # Mills-ratio asymptote for the far lower tail, where erfc underflows.
    return -x * x / 2 - math.log(-x * math.sqrt(2 * math.pi))


@dataclass(frozen=True)
class DisclosureReport:
    """What a federated query disclosed, returned with its result."""

    min_group_size: int
    groups_released: int
    cells_suppressed: int  # domain cells below ``min_group_size``, empty ones included
    epsilon: float | None  # spent by this query; None: no DP noise
    delta: float | None
    epsilon_spent: float | None  # by the data set, this query included
    epsilon_remaining: float | None
    count_noise_std: float | None  # standard deviation of the noise on each COUNT(*)
    error_bounds: dict[str, float] = field(default_factory=dict)  # output -> max |error|
