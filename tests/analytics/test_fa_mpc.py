"""The secure combination with real CrypTen parties: sums, MIN/MAX, suppression, DP noise."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from federate import assert_same, centralised
from mpc_harness import combine_in_parties

from analytics import Disclosure, disclosure_report, finalise, plan_query
from flai.datasets.heart import SCHEMA as HEART
from flai.mpc.fixed_point import SCALE
from flai.mpc.secure_combine import CombineSpec, PartialVectors, combine_plaintext
from flai.privacy_ledger import PrivacyBudgetExceeded, PrivacyLedger
from flai.sql_engine import run_partials

QUERY = "SELECT cp, COUNT(*), AVG(chol), MIN(oldpeak), MAX(oldpeak) FROM heart GROUP BY cp"
K = 50  # 'typical angina' has 46 patients: suppressed


@pytest.mark.parametrize("provider", ["TFP", "TTP"])
def test_secure_combination_reveals_only_large_groups_to_rank_0(heart_files, provider):
    """TFP: rank 0 deals the triples (and must be trusted); TTP: a dealer process does."""
    plan = plan_query(QUERY, HEART, Disclosure(min_group_size=K))
    partials = [run_partials(path, HEART, plan.partials) for path in heart_files]
    results, _ = combine_in_parties(plan.combine, partials, provider)
    combined = results[0]
    assert results[1:] == [None] * len(partials), "providers learn nothing"

    reference = combine_plaintext(plan.combine, partials)
    assert combined.released.tolist() == reference.released.tolist()
    assert combined.suppressed == 1
    # Fixed point: each of 5 parties rounds once per value (<= 2**-17 each).
    assert np.abs(combined.sums - reference.sums).max() <= 5 / (2 * SCALE)
    assert np.abs(combined.mins - reference.mins).max() <= 1 / SCALE
    assert np.abs(combined.maxs - reference.maxs).max() <= 1 / SCALE

    # The suppressed group's values never reach rank 0: its row is exactly zero, and its
    # true count, chol sum, MIN and MAX appear nowhere in what rank 0 holds.
    everything = combine_plaintext(replace(plan.combine, min_group_size=1), partials)
    small = np.flatnonzero(~combined.released & everything.released)
    assert small.size == 1
    assert not combined.sums[small].any() and not combined.mins[small].any()
    revealed = np.concatenate([combined.sums.ravel(), combined.mins.ravel(), combined.maxs.ravel()])
    for secret in (*everything.sums[small[0], :4], everything.mins[small[0], 0], everything.maxs[small[0], 0]):
        if secret != 0:
            assert np.abs(revealed - secret).min() > 1e-3, f"{secret} leaked"

    table = finalise(plan, combined)
    expected = centralised(f"{QUERY} HAVING COUNT(*) >= {K}", "heart", heart_files)
    assert table.num_rows == 3
    assert_same(table, expected, plan, ordered=False, abs_tol=5 / SCALE)


def test_minimum_of_negative_values_decodes_right_and_ties_count_once():
    """Values just above negative integers are where CrypTen's own decode is 1.0 off."""
    tricky = np.array([[-1.0 + 1 / SCALE], [-3.0 + 1 / SCALE], [7.5]])
    spec = CombineSpec(3, 1, (1.0,), 1, 1, min_group_size=1, max_rows=1000)
    counts = np.ones((3, 1))
    a = PartialVectors(counts, tricky, tricky - 1)
    b = PartialVectors(counts, np.array([[1.0], [-1.0], [7.5]]), np.array([[-5.0], [-6.0], [7.5]]))
    results, _ = combine_in_parties(spec, [a, b])
    assert results[0].mins.tolist() == [[-1.0 + 1 / SCALE], [-3.0 + 1 / SCALE], [7.5]]
    assert results[0].maxs.tolist() == [[-2.0 + 1 / SCALE], [-4.0 + 1 / SCALE], [7.5]]


def test_distributed_noise_charges_the_budget_and_refuses_past_it(heart_files, tmp_path):
    sql = "SELECT sex, COUNT(*) AS n, AVG(age) AS a, MIN(age) AS lo FROM heart GROUP BY sex"
    ledger = PrivacyLedger(tmp_path, budget=1.5)
    plan = plan_query(sql, HEART, Disclosure(min_group_size=10, epsilon=1.0, delta=1e-6))
    charge = ledger.charge(HEART.name, "query-1", plan.disclosure.epsilon, plan.disclosure.delta)
    partials = [run_partials(path, HEART, plan.partials) for path in heart_files]
    results, _ = combine_in_parties(plan.combine, partials)
    noisy = finalise(plan, results[0]).sort_by("sex")
    exact = centralised(f"{sql} ORDER BY sex", "heart", heart_files)

    report = disclosure_report(plan, results[0], charge)
    assert (report.epsilon, report.epsilon_spent, report.epsilon_remaining) == (1.0, 1.0, 0.5)
    sigma = report.count_noise_std * math.sqrt(len(partials) / (len(partials) - 1))
    errors = np.array(noisy["n"].to_pylist()) - np.array(exact["n"].to_pylist())
    assert np.abs(errors).max() <= 6 * sigma, "noise far beyond its calibrated scale"
    # Continuous noise: the noisy averages differ from the exact ones (with probability 1).
    assert (np.array(noisy["a"].to_pylist()) != np.array(exact["a"].to_pylist())).all()
    # MIN moves by at most the declared range (100 - 18) when one row changes: noise to match.
    minimum_errors = np.array(noisy["lo"].to_pylist()) - np.array(exact["lo"].to_pylist())
    assert 0 < np.abs(minimum_errors).max() <= 6 * sigma * (100 - 18)

    second = plan_query(sql, HEART, Disclosure(min_group_size=10, epsilon=1.0))
    with pytest.raises(PrivacyBudgetExceeded, match="has 0.5 of its 1.5 left"):
        ledger.charge(HEART.name, "query-2", second.disclosure.epsilon, second.disclosure.delta)
    assert ledger.spent(HEART.name) == 1.0
