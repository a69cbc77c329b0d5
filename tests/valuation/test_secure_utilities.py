"""Coalition utilities in MPC (real CrypTen parties, TTP dealer) against the plaintext ones.

Stated tolerances, from fixed point at 2**-16 and the e^x / log(1 + x) approximations
(``flai.mpc.secure_utilities``): a coalition's mean log loss within 5e-4 (measured <= 1.6e-4),
its accuracy within 1e-4 unless a row's logit is within ~1e-4 of 0 (then one row, 1/256);
a Shapley or leave-one-out value, a weighted mean of differences of two utilities, within
twice the loss tolerance.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from flai.mpc.secure_utilities import UtilityInput, UtilitySpec, UtilitySpecMismatch
from flai.valuation.shapley import ExactShapley, LeaveOneOut
from flai.valuation.utility import CoalitionUtility, Holdout, coalition_qualities
from tests.valuation.census_round import census_round
from tests.valuation.parties import ExactAndLeaveOneOut, run_parties

pytestmark = pytest.mark.slow  # a Census round and two sessions of 6 processes: ~1-2 minutes

LOSS_TOLERANCE = 5e-4
ROWS = 64


@pytest.fixture(scope="module")
def four_providers():
    round_ = census_round(4, rows=ROWS, alpha=1.0, seed=0)
    # One provider brings fewer rows than the cap: the padding must not count.
    short = round_.holdouts["provider-3"]
    holdouts = {**round_.holdouts, "provider-3": Holdout(short.features[:40], short.labels[:40])}
    return dataclasses.replace(round_, holdouts=holdouts)


def _inputs(round_):
    return [UtilityInput(round_.staged[p], round_.holdouts[p].features, round_.holdouts[p].labels)
            for p in round_.staged]


def test_shapley_and_leave_one_out_in_mpc_equal_plaintext(four_providers):
    round_ = four_providers
    names = tuple(round_.staged)
    spec = UtilitySpec(names, round_.global_vector, ROWS)
    (exact, loo), others, _ = run_parties(spec, _inputs(round_), ExactAndLeaveOneOut(names))

    assert others == [None] * len(names), "only rank 0 may learn anything"
    assert (exact.batches, loo.batches) == (1, 1)
    coalitions = list(exact.qualities)
    assert len(coalitions) == 16
    plain = coalition_qualities(round_.global_vector, round_.staged, list(round_.holdouts.values()),
                                coalitions)
    for coalition, expected in zip(coalitions, plain):
        got = exact.qualities[coalition]
        assert abs(got.log_loss - expected.log_loss) <= LOSS_TOLERANCE, coalition
        assert abs(got.accuracy - expected.accuracy) <= 1 / (3 * ROWS + 40) + 1e-4, coalition

    utility = CoalitionUtility(lambda cs: coalition_qualities(
        round_.global_vector, round_.staged, list(round_.holdouts.values()), cs))
    for strategy, secure in ((ExactShapley(), exact), (LeaveOneOut(), loo)):
        expected = strategy.value(list(names), utility)
        assert secure.values == pytest.approx(expected, abs=2 * LOSS_TOLERANCE), type(strategy).__name__
    assert max(abs(v) for v in exact.values.values()) > 20 * LOSS_TOLERANCE, "a game worth testing"


def test_parties_given_different_specs_share_nothing(four_providers):
    round_ = four_providers
    names = tuple(round_.staged)
    spec = UtilitySpec(names, round_.global_vector, ROWS)
    nudged = dataclasses.replace(spec, global_vector=spec.global_vector + torch.eye(len(spec.global_vector))[0])
    with pytest.raises(RuntimeError) as failed:
        run_parties(spec, _inputs(round_), ExactAndLeaveOneOut(names),
                    specs=[spec, spec, nudged, spec, spec])
    assert isinstance(failed.value.__cause__, UtilitySpecMismatch)
