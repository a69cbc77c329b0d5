"""The reward rule (flai.rewards.split): exact sums, the gate, the samples-only fallback,
clipping and smoothing."""

from __future__ import annotations

from fractions import Fraction

import pytest

from flai.rewards.contributions import Contribution, ContributionRecord, ContributionRecordError
from flai.rewards.split import RewardSplitError, largest_remainder, split_epoch, split_tasks

ACCOUNTS = {name: "0x" + f"{i + 1:02x}" * 20 for i, name in enumerate("abcd")}
POOL = 1000 * 10**18


def record(round_number: int, *contributions: Contribution) -> ContributionRecord:
    return ContributionRecord.of("task", round_number, contributions,
                                 {c.provider: ACCOUNTS[c.provider] for c in contributions})


def amounts(records: list[ContributionRecord], pool: int = POOL, smoothing: float = 1.0) -> dict[str, int]:
    return {r.provider: r.amount for r in split_epoch(records, pool, smoothing).rewards}


def test_amounts_are_exact_and_sum_to_the_pool() -> None:
    # Three equal thirds of an odd pool: the unit left goes to the first name.
    thirds = amounts([record(1, *(Contribution(p, 7, True) for p in "abc"))], pool=10**18 + 1)
    assert thirds == {"a": 333333333333333334, "b": 333333333333333334, "c": 333333333333333333}
    assert sum(thirds.values()) == 10**18 + 1
    odd = amounts([record(1, Contribution("a", 1, True, value=0.1), Contribution("b", 2, True, value=0.7),
                          Contribution("c", 3, True, value=0.13))], pool=97)
    assert sum(odd.values()) == 97
    exact = {"a": Fraction(0.1), "b": 2 * Fraction(0.7), "c": 3 * Fraction(0.13)}
    total = sum(exact.values())
    for name, amount in odd.items():
        assert abs(amount - 97 * exact[name] / total) < 1  # floor or one more


def test_a_failed_gate_or_a_dropout_earns_nothing_for_that_round() -> None:
    first = record(1, Contribution("a", 10, True, value=0.5), Contribution("b", 10, False, value=0.9),
                   Contribution("c", 10, True, "died during secure aggregation", value=0.9))
    assert amounts([first]) == {"a": POOL, "b": 0, "c": 0}
    second = record(2, *(Contribution(p, 10, True, value=0.5) for p in "abc"))
    both = split_epoch([first, second], POOL, 1.0)
    # Round 2 pays the three equally; round 1 pays a alone.
    assert [r.amount for r in both.rewards] == [POOL // 2 + POOL // 6 + 1, POOL // 6 + 1, POOL // 6]
    assert [r.paid_rounds for r in both.rewards] == [2, 1, 1]
    assert [r.rounds for r in both.rewards] == [2, 2, 2]


def test_a_round_without_values_weighs_by_samples() -> None:
    plain = record(1, Contribution("a", 30, True), Contribution("b", 10, True), Contribution("c", 60, False))
    assert amounts([plain], pool=100) == {"a": 75, "b": 25, "c": 0}
    # One eligible provider without a value: the round is not valued, samples decide.
    partly = record(1, Contribution("a", 30, True, value=-5.0), Contribution("b", 10, True))
    assert amounts([partly], pool=100) == {"a": 75, "b": 25}
    # A dropped provider's missing value does not make the round unvalued.
    valued = record(1, Contribution("a", 30, True, value=0.0), Contribution("b", 10, True, value=1.0),
                    Contribution("c", 10, True, "timed out"))
    assert amounts([valued], pool=100) == {"a": 0, "b": 100, "c": 0}


def test_negative_values_are_clipped_and_a_round_nobody_earned_pays_nothing() -> None:
    negative = record(1, Contribution("a", 10, True, value=-0.3), Contribution("b", 10, True, value=0.2))
    assert amounts([negative]) == {"a": 0, "b": POOL}
    worthless = record(2, Contribution("a", 10, True, value=-0.3), Contribution("c", 10, True, value=-1.0))
    # Round 2 has no positive weight: round 1 keeps the whole pool.
    split = split_epoch([negative, worthless], POOL, 1.0)
    assert (split.paying_rounds, split.total) == (1, POOL)
    assert {r.provider: r.amount for r in split.rewards} == {"a": 0, "b": POOL, "c": 0}
    nothing = split_epoch([worthless], POOL, 1.0)
    assert nothing.total == 0 and nothing.paying_rounds == 0


def test_values_are_smoothed_over_a_providers_rounds() -> None:
    rounds = [record(1, Contribution("a", 10, True, value=1.0), Contribution("b", 10, True, value=1.0)),
              record(2, Contribution("a", 10, True, value=-1.0), Contribution("b", 10, True, value=1.0))]
    # Unsmoothed, a's bad round 2 earns it nothing there; at 0.25 its average is still 0.5.
    assert amounts(rounds, pool=120, smoothing=1.0) == {"a": 30, "b": 90}
    smoothed = split_epoch(rounds, 120, 0.25)
    assert {r.provider: r.amount for r in smoothed.rewards} == {"a": 50, "b": 70}
    assert [r.value for r in smoothed.rewards] == [0.5, 1.0]


def test_largest_remainder_is_deterministic() -> None:
    entitled = {"b": Fraction(5, 2), "a": Fraction(5, 2), "c": Fraction(5)}
    assert largest_remainder(entitled, 10) == {"a": 3, "b": 2, "c": 5}


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(RewardSplitError):
        split_epoch([], -1, 0.5)
    with pytest.raises(RewardSplitError):
        split_epoch([], 10, 0.0)
    with pytest.raises(ContributionRecordError):
        record(1, Contribution("a", -1, True))
    with pytest.raises(ContributionRecordError):
        record(1, Contribution("a", 1, True, value=float("nan")))
    moved = ContributionRecord.of("task", 2, [Contribution("a", 1, True)], {"a": ACCOUNTS["b"]})
    with pytest.raises(RewardSplitError):
        split_epoch([record(1, Contribution("a", 1, True)), moved], 10, 0.5)


def test_an_epoch_of_several_tasks_pays_each_pool_over_its_own_rounds() -> None:
    def of_task(task: str, round_number: int, *contributions: Contribution) -> ContributionRecord:
        return ContributionRecord.of(task, round_number, contributions,
                                     {c.provider: ACCOUNTS[c.provider] for c in contributions})

    # Task one pays 900 over two rounds; task two 100 over one round, valued: b's value there
    # is not smoothed with anything from task one.
    one = [of_task("one", 1, Contribution("a", 10, True), Contribution("b", 30, True)),
           of_task("one", 2, Contribution("a", 10, True))]
    two = [of_task("two", 1, Contribution("b", 10, True, value=0.5), Contribution("c", 10, True, value=0.5))]
    split = split_tasks([(one, 900), (two, 100)], 0.5)
    paid = {r.provider: r.amount for r in split.rewards}
    assert paid == {"a": 450 + 113, "b": 337 + 50, "c": 50}
    assert split.total == split.pool == 1000
    assert (split.rounds, split.paying_rounds) == (3, 3)
    assert {r.provider: r.rounds for r in split.rewards} == {"a": 2, "b": 2, "c": 1}
    # A provider paid at two accounts across tasks is refused, as within one task.
    moved = [ContributionRecord.of("three", 1, [Contribution("a", 1, True)], {"a": ACCOUNTS["b"]})]
    with pytest.raises(RewardSplitError):
        split_tasks([(one, 10), (moved, 10)], 0.5)
