"""Contribution valuation, a step of the round: what each provider's accepted update was worth.

It runs once the round's secure aggregate is accepted, over the parties of that aggregate
and the very values they put into it (``Provider.accept`` keeps each for one valuation), in
the federation's kept MPC session: the aggregator drives a valuation strategy
(``flai.valuation.shapley``) over coalition utilities computed on shares
(``flai.mpc.secure_utilities``) and learns each coalition's log loss and accuracy, nothing
else; the providers return nothing.

A valuation is never re-run: a second session over fewer parties would reveal utilities of
the same updates again. A failed valuation costs the round its values, never the round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.mpc.secure_utilities import UtilitySpec
from flai.valuation.shapley import MAX_EXACT_PLAYERS, ExactShapley, GTGShapley, Valuation
from flai.valuation.utility import Valued
from tasks.secure_aggregation import RoundFailed, Step, run_secure_session

# Holdout rows each provider brings to the utilities: the MPC cost grows with the rows.
VALIDATION_ROWS = 64


@dataclass(frozen=True)
class RoundValuation:
    """A round's valuation as the aggregator learnt it, and how long its session took."""

    strategy: str  # the valuation that ran, e.g. ``ExactShapley``
    valued: Valued[str]  # values, every coalition's quality, the protocol's batches
    seconds: float

    @property
    def values(self) -> dict[str, float]:
        return self.valued.values


def valuation_for(valuation: Valuation, providers: int, round_number: int) -> Valuation:
    """``valuation``, except that exact Shapley past ``MAX_EXACT_PLAYERS`` providers (2**n
    coalitions) becomes GTG-Shapley, its sampling seeded by the round.

    >>> type(valuation_for(ExactShapley(), 9, 1)).__name__, type(valuation_for(ExactShapley(), 8, 1)).__name__
    ('GTGShapley', 'ExactShapley')
    """
    if isinstance(valuation, ExactShapley) and providers > MAX_EXACT_PLAYERS:
        return GTGShapley(seed=round_number)
    return valuation


def value_accepted(federation: fed.Federation, providers: tuple[str, ...], contribution_id: str,
                   global_vector: torch.Tensor, valuation: Valuation, seed: int, *,
                   incarnations: Mapping[str, str] | None = None,
                   step: Step = Step("valuation")) -> RoundValuation:
    """Value the accepted ``contribution_id`` of ``providers`` (staged against
    ``global_vector``), each bringing holdout rows drawn with ``seed``; one session, all or
    nothing (raises ``RoundFailed``)."""
    spec = UtilitySpec(providers, global_vector, VALIDATION_ROWS)
    session = run_secure_session(
        federation, providers, contribution_id,
        ready=lambda p: p.can_value.remote(contribution_id),
        join=lambda p, s: p.join_secure_utilities.remote(s, contribution_id, spec, seed),
        receive=lambda aggregator, s: aggregator.secure_utilities.remote(s, spec, valuation),
        rerun=False, incarnations=incarnations, step=step)
    return RoundValuation(type(valuation).__name__, session.received, session.seconds)


@task(cache_policy=NO_CACHE)
def value_contributions(federation: fed.Federation, participants: tuple[str, ...],
                        contribution_id: str, global_vector: torch.Tensor, valuation: Valuation,
                        round_number: int, seed: int,
                        incarnations: Mapping[str, str]) -> RoundValuation | None:
    """The round's values, or None when the valuation failed (settlement then falls back to
    the providers' samples for this round)."""
    strategy = valuation_for(valuation, len(participants), round_number)
    try:
        return value_accepted(federation, participants, contribution_id, global_vector, strategy,
                              seed, incarnations=incarnations,
                              step=Step("valuation", round_number))
    except RoundFailed as error:
        get_run_logger().warning("round %d is not valued: %s", round_number, error)
        return None
