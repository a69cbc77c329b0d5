"""The secure combination with real CrypTen parties: sums, MIN/MAX, withholding, DP noise."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from federate import EXACT, assert_same, centralised
from mpc_harness import combine_in_parties

from analytics import finalise, plan_query
from analytics.aggregates import Kind
from flai.datasets.heart import POLICY, SCHEMA as HEART, load
from flai.datasets.policy import Aggregate, Release
from flai.mpc.fixed_point import SCALE
from flai.mpc.secure_combine import combine_plaintext
from flai.query_types import CombineSpec, PartialVectors
from flai.sql_engine import run_partials

QUERY = "SELECT cp, COUNT(*), AVG(chol), MIN(oldpeak), MAX(oldpeak) FROM heart GROUP BY cp"
K = 50  # 'typical angina' has 46 patients: suppressed


@pytest.mark.parametrize("provider", ["TFP", "TTP"])
def test_secure_combination_reveals_only_large_groups_to_rank_0(heart_files, provider):
    """TFP: rank 0 deals the triples (and must be trusted); TTP: a dealer process does."""
    plan = plan_query(QUERY, HEART, replace(EXACT, min_group_size=K))
    partials = [run_partials(path, HEART, plan.partials) for path in heart_files]
    results, _ = combine_in_parties(plan.combine, partials, provider)
    combined = results[0]
    assert results[1:] == [None] * len(partials), "providers learn nothing"

    reference = combine_plaintext(plan.combine, partials)
    assert combined.released.tolist() == reference.released.tolist()
    assert (combined.columns_released == reference.columns_released).all()
    assert combined.suppressed == 1
    # Fixed point: each of 5 parties rounds once per value (<= 2**-17 each); MIN/MAX are
    # scaled to spend the ring's precision, so they are exact far beyond 1e-6 relative.
    assert np.abs(combined.sums - reference.sums).max() <= 5 / (2 * SCALE)
    assert np.abs(combined.mins - reference.mins).max() <= 1e-9
    assert np.abs(combined.maxs - reference.maxs).max() <= 1e-9

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


def test_parties_with_different_plans_share_nothing():
    spec = CombineSpec(1, 1, (1.0,), 0, 0, min_group_size=1, max_rows=1000, digest=bytes(32))
    ones = PartialVectors(np.ones((1, 1)), np.zeros((1, 0)), np.zeros((1, 0)))
    with pytest.raises(RuntimeError, match="failed") as failed:
        combine_in_parties(spec, [ones, ones], party_specs=[spec, spec, replace(spec, digest=b"x" * 32)])
    assert "derived different plans" in str(failed.value.__cause__)


def test_an_aggregate_one_row_feeds_is_withheld_though_its_group_is_large(heart_files):
    """Exact release of sums: a column is released only where k rows move it (non-zero)."""
    patient = load().iloc[0]
    one_person = f"age = {patient.age:g} AND chol = {patient.chol:g} AND trestbps = {patient.trestbps:g}"
    sql = (f"SELECT sex, COUNT(*) AS n, SUM(CASE WHEN {one_person} THEN chol ELSE 0 END) AS leak, "
           "SUM(age) AS ages FROM heart GROUP BY sex")
    policy = replace(EXACT, release=Release.EXACT_COUNTS_AND_SUMS, min_group_size=10,
                     aggregates=frozenset({Aggregate.COUNT, Aggregate.SUM, Aggregate.AVG}))
    plan = plan_query(sql, HEART, policy)
    partials = [run_partials(path, HEART, plan.partials) for path in heart_files]
    results, _ = combine_in_parties(plan.combine, partials, "TTP")
    table = finalise(plan, results[0]).sort_by("sex").to_pylist()
    assert [row["leak"] for row in table] == [None, None]
    assert [row["n"] for row in table] == [194, 726]
    assert all(row["ages"] is not None for row in table)


def test_distributed_noise_is_calibrated_and_min_is_a_bin_edge(heart_files):
    sql = "SELECT sex, COUNT(*) AS n, AVG(age) AS a, MIN(age) AS lo, MAX(age) AS hi FROM heart GROUP BY sex"
    plan = plan_query(sql, HEART, POLICY)  # differential privacy at the policy's default epsilon
    assert plan.epsilon == POLICY.epsilon and plan.combine.minima == 0
    partials = [run_partials(path, HEART, plan.partials) for path in heart_files]
    results, _ = combine_in_parties(plan.combine, partials, "TTP")
    noisy = finalise(plan, results[0]).sort_by("sex")
    exact = centralised(f"{sql} ORDER BY sex", "heart", heart_files)

    sigma = plan.count_noise_std * math.sqrt(len(partials) / (len(partials) - 1))
    errors = np.array(noisy["n"].to_pylist()) - np.array(exact["n"].to_pylist())
    assert np.abs(errors).max() <= 6 * sigma, "noise far beyond its calibrated scale"
    # Continuous noise: the noisy averages differ from the exact ones (with probability 1).
    assert (np.array(noisy["a"].to_pylist()) != np.array(exact["a"].to_pylist())).all()
    # MIN/MAX are read off the noisy histogram: edges of the public bin grid, never a row's
    # value; NULL where no bin stands out of the noise. The 726 men's ages do.
    histogram = next(a.histogram for a in plan.aggregates if a.kind is Kind.MIN)
    edges = [v for v in noisy["lo"].to_pylist() + noisy["hi"].to_pylist() if v is not None]
    assert noisy["hi"].to_pylist()[1] is not None
    for edge in edges:
        position = (edge - histogram.low) / histogram.width
        assert position == pytest.approx(round(position), abs=1e-9)
