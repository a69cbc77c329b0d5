"""What differential privacy costs at the heart policy's defaults: the stated utility holds.

The release is built exactly as the protocol builds it: the providers' partials from their
engines, the exact totals (``combine_plaintext``), plus each provider's noise share drawn by
the production code (``_noise_share``); finalise then reads it. The secure combination of the
same noise is tested with real parties in ``test_fa_mpc.py``; here the release is repeated
many times, which real sessions would make slow.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from federate import centralised

from analytics import finalise, plan_query
from flai.datasets.heart import POLICY, SCHEMA as HEART
from flai.mpc.secure_combine import _noise_share, combine_plaintext
from flai.query_types import CombinedVectors
from flai.sql_engine import run_partials

TRIALS = 200
STATED_RELATIVE_ERROR = 0.20  # README: counts and means over groups of >= 100 rows
STATED_SHARE = 0.95


def test_counts_and_means_of_large_groups_are_within_the_stated_error(heart_files):
    sql = "SELECT cp, COUNT(*) AS n, AVG(age) AS a FROM heart GROUP BY cp ORDER BY cp"
    plan = plan_query(sql, HEART, POLICY)  # epsilon 1, delta 1e-6
    partials = [run_partials(path, HEART, plan.partials) for path in heart_files]
    exact = combine_plaintext(replace(plan.combine, sum_noise=None, min_group_size=1), partials)
    truth = {row["cp"]: (row["n"], row["a"]) for row in centralised(sql, "heart", heart_files).to_pylist()}
    large = {cp for cp, (n, _) in truth.items() if n >= 100}
    assert len(large) == 3

    within = []
    for _ in range(TRIALS):
        noisy = exact.sums + sum(_noise_share(plan.combine, len(partials)) for _ in partials)
        passed = noisy >= POLICY.min_group_size - 0.5
        released = passed[:, 0]
        columns = passed[:, list(plan.combine.column_supports)] & released[:, None]
        table = finalise(plan, CombinedVectors(noisy * columns, exact.mins, exact.maxs,
                                               released, columns))
        for row in table.to_pylist():
            if row["cp"] in large:
                n, mean = truth[row["cp"]]
                within += [abs(row["n"] - n) <= STATED_RELATIVE_ERROR * n,
                           row["a"] is not None and abs(row["a"] - mean) <= STATED_RELATIVE_ERROR * mean]
    assert len(within) == TRIALS * len(large) * 2  # every large group released every time
    assert np.mean(within) >= STATED_SHARE, np.mean(within)
