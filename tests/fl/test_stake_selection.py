"""A paid task selects only providers that bonded its minimum stake in ProviderStaking."""

from __future__ import annotations

import uuid

import pytest

from actors import federation as fed
from cli.rewards import deposit
from flows.fl_training import TrainingJob, fl_training
from tasks.chain import ledger
from tasks.settlement import provider_accounts

pytestmark = pytest.mark.slow

MINIMUM = 5 * 10**18


def test_selection_skips_providers_without_enough_stake(prefect_server,
                                                          heart_federation: fed.Federation):
    chain = ledger()
    providers = heart_federation.providers
    staked, short = providers[:3], providers[3]
    accounts = provider_accounts(providers)
    for name in providers:
        chain.mint_tokens(accounts[name], MINIMUM)
    for name in staked:
        deposit(name, "5")  # the whole minimum, from the provider's own account
    deposit(short, "4.5")  # half a FLAI short
    assert [chain.eligible(accounts[name], MINIMUM) for name in providers] == [True] * 3 + [False]

    job = TrainingJob(f"staked-{uuid.uuid4().hex[:8]}", heart_federation, rounds=1,
                      min_stake=MINIMUM)
    (result,) = fl_training(job).rounds
    assert set(result.participants) == set(staked)
    assert result.dropped == {short: "stake below the task's minimum of 5 FLAI"}
