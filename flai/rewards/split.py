"""The reward rule: how an epoch's pool is split over the providers of its rounds.

Per round r and provider i (rounds in the order they were recorded):

1. Smoothing. Over the rounds of the epoch in which i has a value v, its smoothed value is the
   exponential moving average ``s = v`` at its first valued round, then
   ``s = a * v + (1 - a) * s`` (``a`` = ``settings.reward_value_smoothing``; 1 is no
   smoothing). One lucky or unlucky round moves a provider's pay only part of the way.
2. Weight. ``w_ri = max(s_ri, 0) * n_ri / N_r * g_ri``: the smoothed value clipped at zero (a
   provider whose data made the model worse earns nothing, and is not charged), times its
   share of the round's samples (n over N, the samples of the round's eligible providers),
   times g = 1 if it passed the quality gate and stayed in the round, else 0. A round whose
   eligible providers were not all valued weighs by samples alone: ``w_ri = n_ri / N_r * g_ri``.
3. Rounds. A task's pool (escrowed by its modeler, released when its model was accepted) is
   split equally over its paying rounds (those with a positive total weight), and each round's
   part over its providers in proportion to weight. A round where nobody earned pays nothing
   and leaves its part to the others. An epoch of several tasks adds each provider's parts up
   (:func:`split_tasks`).
4. Amounts. Computed exactly (fractions), then rounded down to FLAI base units; the units left
   over go one each to the largest remainders, ties to the provider name first in sort order,
   so the amounts are integers summing exactly to each task's pool, the same on every run.

Pure: no chain, no store, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from flai.rewards.contributions import ContributionRecord
from flai.rewards.errors import RewardsInputError


class RewardSplitError(RewardsInputError):
    """The split cannot be made from these inputs."""


@dataclass(frozen=True)
class ProviderReward:
    """One provider's part of an epoch."""

    provider: str
    account: str
    rounds: int  # rounds of the epoch it appears in
    paid_rounds: int  # of them, rounds where its weight was positive
    value: float | None  # its smoothed value after its last valued round; None: never valued
    share: float  # of the pool: amount / pool
    amount: int  # FLAI base units


@dataclass(frozen=True)
class EpochSplit:
    pool: int
    rounds: int
    paying_rounds: int
    rewards: tuple[ProviderReward, ...]  # sorted by provider

    @property
    def total(self) -> int:
        """What the epoch pays: the pool, or 0 when no round paid."""
        return sum(r.amount for r in self.rewards)


def split_epoch(records: Sequence[ContributionRecord], pool: int, smoothing: float) -> EpochSplit:
    """Split ``pool`` over the providers of ``records`` (in recorded order).

    >>> from flai.rewards.contributions import Contribution
    >>> accounts = {"a": "0x" + "11" * 20, "b": "0x" + "22" * 20}
    >>> valued = ContributionRecord.of("t", 1, [Contribution("a", 30, True, value=0.2),
    ...     Contribution("b", 10, True, value=-0.1)], accounts)
    >>> unvalued = ContributionRecord.of("t", 2, [Contribution("a", 30, True),
    ...     Contribution("b", 10, True)], accounts)
    >>> [r.amount for r in split_epoch([valued, unvalued], 100, 0.5).rewards]
    [88, 12]
    """
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
        raise RewardSplitError("pool", pool, "an integer >= 0")
    if not 0 < smoothing <= 1:
        raise RewardSplitError("smoothing", smoothing, "a fraction in (0, 1]")
    alpha = Fraction(smoothing)
    smoothed: dict[str, Fraction] = {}
    accounts: dict[str, str] = {}
    rounds: dict[str, int] = {}
    paid_rounds: dict[str, int] = {}
    round_weights: list[dict[str, Fraction]] = []
    for record in records:
        for c in record.contributions:
            account = accounts.setdefault(c.provider, record.accounts[c.provider])
            if account != record.accounts[c.provider]:
                raise RewardSplitError(f"accounts[{c.provider}]", record.accounts[c.provider],
                                       f"{account}, as in its earlier rounds")
            rounds[c.provider] = rounds.get(c.provider, 0) + 1
            if c.value is not None:
                value = Fraction(c.value)
                previous = smoothed.get(c.provider)
                smoothed[c.provider] = value if previous is None else alpha * value + (1 - alpha) * previous
        weights = _round_weights(record, smoothed)
        for provider in weights:
            paid_rounds[provider] = paid_rounds.get(provider, 0) + 1
        if weights:
            round_weights.append(weights)
    entitled = {provider: Fraction(0) for provider in rounds}
    for weights in round_weights:
        part = Fraction(pool, len(round_weights))
        total = sum(weights.values())
        for provider, weight in weights.items():
            entitled[provider] += part * weight / total
    amounts = largest_remainder(entitled, pool if round_weights else 0)
    rewards = tuple(ProviderReward(
        provider, accounts[provider], rounds[provider], paid_rounds.get(provider, 0),
        float(smoothed[provider]) if provider in smoothed else None,
        amounts[provider] / pool if pool else 0.0, amounts[provider]) for provider in sorted(rounds))
    return EpochSplit(pool, len(records), len(round_weights), rewards)


def _round_weights(record: ContributionRecord, smoothed: dict[str, Fraction]) -> dict[str, Fraction]:
    """The positive weights of a round's providers (step 2), after its values were smoothed."""
    eligible = [c for c in record.contributions if c.eligible]
    samples = sum(c.samples for c in eligible)
    if not samples:
        return {}
    valued = all(c.value is not None for c in eligible)
    weights = {}
    for c in eligible:
        weight = Fraction(c.samples, samples)
        if valued:
            weight *= max(smoothed[c.provider], Fraction(0))
        if weight > 0:
            weights[c.provider] = weight
    return weights


def largest_remainder(entitled: dict[str, Fraction], total: int) -> dict[str, int]:
    """Integers summing to ``total`` (the entitlements' sum), each the floor of its entitlement
    or one more: the units left go to the largest remainders, ties by name.

    >>> largest_remainder({"a": Fraction(10, 3), "b": Fraction(10, 3), "c": Fraction(10, 3)}, 10)
    {'a': 4, 'b': 3, 'c': 3}
    """
    amounts = {name: int(share) for name, share in entitled.items()}  # int() floors: shares >= 0
    left = total - sum(amounts.values())
    by_remainder = sorted(entitled, key=lambda name: (-(entitled[name] - amounts[name]), name))
    for name in by_remainder[:left]:
        amounts[name] += 1
    return amounts


def split_tasks(tasks: Sequence[tuple[Sequence[ContributionRecord], int]], smoothing: float) -> EpochSplit:
    """An epoch of several tasks: each task's pool split over its own rounds (:func:`split_epoch`;
    values are smoothed within a task, as one task's value says nothing of another's), then each
    provider's parts added up. ``share`` is of all the pools together.

    >>> from flai.rewards.contributions import Contribution
    >>> accounts = {"a": "0x" + "11" * 20, "b": "0x" + "22" * 20}
    >>> first = ContributionRecord.of("t1", 1, [Contribution("a", 30, True)], accounts)
    >>> second = ContributionRecord.of("t2", 1, [Contribution("a", 10, True),
    ...     Contribution("b", 30, True)], accounts)
    >>> [(r.provider, r.amount, r.rounds) for r in split_tasks([([first], 100), ([second], 40)], 1.0).rewards]
    [('a', 110, 2), ('b', 30, 1)]
    """
    splits = [split_epoch(records, pool, smoothing) for records, pool in tasks]
    pool = sum(split.pool for split in splits)
    parts: dict[str, list[ProviderReward]] = {}
    for split in splits:
        for reward in split.rewards:
            parts.setdefault(reward.provider, []).append(reward)
    rewards = []
    for provider in sorted(parts):
        mine = parts[provider]
        if len({r.account for r in mine}) > 1:
            raise RewardSplitError(f"accounts[{provider}]", mine[-1].account,
                                   f"{mine[0].account}, as in its other tasks")
        amount = sum(r.amount for r in mine)
        valued = [r.value for r in mine if r.value is not None]
        rewards.append(ProviderReward(provider, mine[0].account, sum(r.rounds for r in mine),
                                      sum(r.paid_rounds for r in mine), valued[-1] if valued else None,
                                      amount / pool if pool else 0.0, amount))
    return EpochSplit(pool, sum(s.rounds for s in splits), sum(s.paying_rounds for s in splits),
                      tuple(rewards))
