"""Valuation strategies: how much each provider's update is worth in one round.

Like the aggregation strategies (``flai.learning.strategy``), a valuation is an algorithm
behind one method, ``value(players, utility)``. ``utility`` maps a *batch* of coalitions to
their utilities (``flai.valuation.utility``): in MPC one call is one pass of the protocol
over all its coalitions, so strategies ask for as many coalitions at once as they can.

- ``ExactShapley``: all ``2**n`` coalitions in one batch (n <= 8: 256 coalitions).
- ``LeaveOneOut``: ``n + 1`` coalitions in one batch; ``U(N) - U(N \\ {i})``.
- ``GTGShapley``: guided truncated Monte-Carlo Shapley (Liu et al., "GTG-Shapley", ACM TIST
  2022, arXiv 2109.02053) for federations too large to enumerate.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

import numpy as np

P = TypeVar("P", bound=Hashable)
Utility = Callable[[Sequence[frozenset]], Sequence[float]]

MAX_EXACT_PLAYERS = 8


class ValuationInputError(ValueError):
    """A valuation was asked for players it cannot value (none, duplicates, too many)."""


class Valuation(ABC):
    """Turns coalition utilities into one value per player."""

    @abstractmethod
    def value(self, players: Sequence[P], utility: Utility) -> dict[P, float]:
        """Each player's value; ``utility(coalitions)`` evaluates a batch of frozensets."""


def _check(players: Sequence[P], most: int | None = None) -> None:
    if not players or len(set(players)) != len(players):
        raise ValuationInputError(f"players must be distinct and non-empty, got {list(players)}")
    if most is not None and len(players) > most:
        raise ValuationInputError(f"{len(players)} players: exact valuation stops at {most}")


class ExactShapley(Valuation):
    """``phi_i = sum_{S not containing i} |S|! (n-|S|-1)! / n! * (U(S + i) - U(S))``.

    >>> ExactShapley().value("ab", lambda cs: [len(c) * (2 if "a" in c else 1) for c in cs])
    {'a': 2.5, 'b': 1.5}
    """

    def value(self, players: Sequence[P], utility: Utility) -> dict[P, float]:
        _check(players, MAX_EXACT_PLAYERS)
        n = len(players)
        # Coalition k (a bit mask over players) holds player i iff bit i of k is set.
        coalitions = [frozenset(p for i, p in enumerate(players) if k >> i & 1) for k in range(2**n)]
        u = np.asarray(utility(coalitions), dtype=np.float64)
        weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
        values = {}
        for i, player in enumerate(players):
            without = [k for k in range(2**n) if not k >> i & 1]
            values[player] = float(sum(weight[k.bit_count()] * (u[k | 1 << i] - u[k]) for k in without))
        return values


class LeaveOneOut(Valuation):
    """``U(N) - U(N \\ {i})``: what the round loses without each player. ``n + 1`` coalitions.

    >>> LeaveOneOut().value("ab", lambda cs: [len(c) * (2 if "a" in c else 1) for c in cs])
    {'a': 3.0, 'b': 2.0}
    """

    def value(self, players: Sequence[P], utility: Utility) -> dict[P, float]:
        _check(players)
        everyone = frozenset(players)
        full, *without = utility([everyone, *(everyone - {p} for p in players)])
        return {p: float(full - u) for p, u in zip(players, without)}


class GTGShapley(Valuation):
    """Guided truncated gradient Shapley (GTG-Shapley), batched for MPC.

    1. Between-round truncation: if ``|U(N) - U({})| <= round_tolerance`` the round changed
       the model too little to be worth valuing; every player gets 0.
    2. Guided Monte-Carlo sampling, in sweeps of ``n`` permutations: permutation ``i`` of a
       sweep starts with player ``i`` (so every player is first equally often), the rest in
       random order. A permutation's estimate of player ``p`` is ``U(prefix + p) - U(prefix)``.
    3. Within-round truncation: once ``|U(N) - U(prefix)| < tolerance * |U(N) - U({})|`` the
       players still to come in that permutation get marginal gain 0 and nothing more is
       evaluated for it. The paper's tolerance is absolute; here it is a fraction of the
       round's gain, so one setting fits a loss scale that shrinks round after round.
    4. Convergence: after each sweep, with ``phi^k`` the running mean after ``k``
       permutations, stop once ``mean_i |phi^k_i - phi^K_i| <= convergence * mean_i |phi^K_i|``
       for each of the last ``last_k`` permutations ``k`` and at least ``min_permutations``
       were drawn, or at ``max_permutations``. (The paper divides per player; a null player,
       whose value is 0, would then never converge.)

    Batching: whether a permutation's next prefix is evaluated depends on the utility of the
    one before it, so a permutation is sequential; the batch is formed across the ``n``
    permutations of a sweep, one position at a time (at most ``n - 1`` batches a sweep).
    Coalitions already evaluated are never asked for again.
    """

    def __init__(self, round_tolerance: float = 1e-4, tolerance: float = 0.01,
                 convergence: float = 0.05, last_k: int = 10, min_permutations: int = 30,
                 max_permutations: int = 400, seed: int = 0) -> None:
        self.round_tolerance, self.tolerance, self.convergence = round_tolerance, tolerance, convergence
        self.last_k, self.seed = last_k, seed
        self.min_permutations, self.max_permutations = min_permutations, max_permutations

    def value(self, players: Sequence[P], utility: Utility) -> dict[P, float]:
        _check(players)
        n = len(players)
        everyone = frozenset(players)
        known = dict(zip([frozenset(), everyone], utility([frozenset(), everyone])))
        gain = known[everyone] - known[frozenset()]
        if abs(gain) <= self.round_tolerance:
            return dict.fromkeys(players, 0.0)
        rng = np.random.default_rng(self.seed)
        marginals: list[np.ndarray] = []  # one row per permutation, columns in player order
        while not self._converged(marginals):
            orders = [[first, *rng.permutation([i for i in range(n) if i != first])]
                      for first in range(n)]
            rows = np.zeros((n, n))
            previous = [known[frozenset()]] * n
            running = list(range(n))  # permutations not truncated yet
            for position in range(n):
                running = [r for r in running
                           if abs(known[everyone] - previous[r]) >= self.tolerance * abs(gain)]
                prefixes = {r: frozenset(players[i] for i in orders[r][:position + 1]) for r in running}
                missing = list(dict.fromkeys(c for c in prefixes.values() if c not in known))
                if missing:
                    known.update(zip(missing, utility(missing)))
                for r, prefix in prefixes.items():
                    rows[r, orders[r][position]] = known[prefix] - previous[r]
                    previous[r] = known[prefix]
            marginals.extend(rows)
        estimate = np.mean(marginals, axis=0)
        return {p: float(v) for p, v in zip(players, estimate)}

    def _converged(self, marginals: list[np.ndarray]) -> bool:
        drawn = len(marginals)
        if drawn >= self.max_permutations:
            return True
        if drawn < max(self.min_permutations, self.last_k + 1):
            return False
        running = np.cumsum(marginals, axis=0) / np.arange(1, drawn + 1)[:, None]
        final = running[-1]
        scale = np.mean(np.abs(final))
        spread = np.mean(np.abs(running[-self.last_k:] - final), axis=1)
        return bool(np.all(spread <= self.convergence * scale))
