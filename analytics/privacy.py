"""What a federated query's release disclosed, returned with its result.

Noise is calibrated in ``analytics.plan``: one row changes exactly one group's components,
each additive column ``j`` by at most its bound ``b_j`` (1 for counts, ``max|x|`` for sums,
the half-range squared for centred squares) and a whole histogram by one bin. Scaling every
column by ``1 / b_j`` gives a vector of L2 sensitivity ``sqrt(m)`` (``m``: non-histogram
columns + histograms), so column ``j`` gets noise of standard deviation
``z * sqrt(m) * b_j``, ``z`` the noise multiplier of the query's ``(epsilon, delta)``
(``flai.privacy_ledger.noise_multiplier``). How the noise is split among providers is
``flai.mpc.secure_combine``'s business. Suppression, finalise, HAVING and ORDER BY are
post-processing of the noisy release and cost no extra budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DisclosureReport:
    """What a federated query disclosed, returned with its result."""

    release: str  # the policy's release mode, or differential-privacy
    min_group_size: int
    groups_released: int
    cells_suppressed: int  # domain cells below ``min_group_size``, empty ones included
    epsilon: float | None  # spent by this query; None: exact release
    delta: float | None
    epsilon_spent: float | None  # by the data set, this query included (composed)
    epsilon_remaining: float | None
    count_noise_std: float | None  # standard deviation of the noise on each COUNT(*)
    error_bounds: dict[str, float] = field(default_factory=dict)  # output -> max binning error
