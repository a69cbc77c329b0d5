"""DisclosureRegistry through the Ledger: data sets, budget charges, idempotent retries,
conflicts, the budget limit, roles, events."""

from __future__ import annotations

import hashlib

import pytest
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError

from contracts import (
    ChainContract,
    DatasetRecord,
    Ledger,
    LedgerBudgetExceededError,
    LedgerConflictError,
    LedgerNotFoundError,
    LedgerRevertError,
    LedgerUnauthorizedError,
    LedgerValueError,
    Role,
    keccak_id,
)
from contracts.revert import revert_error

DATASET = keccak_id("heart")
POLICY = hashlib.sha256(b'{"min_group_size": 10, "epsilon": 1.0}').digest()
BUDGET = 2_000_000  # e.g. sum of 1/z^2 <= 2, in micro units


def registered(ledger: Ledger, budget: int = BUDGET) -> Ledger:
    ledger.register_dataset(DATASET, POLICY, budget)
    return ledger


def logs(ledger: Ledger, event: str) -> list:
    events = getattr(ledger.contract(ChainContract.DISCLOSURE).events, event)()
    return events.get_logs(from_block=ledger.manifest.deployment_block)


def test_register_round_trip_idempotency_and_one_event(ledger: Ledger) -> None:
    first = ledger.register_dataset(DATASET, POLICY, BUDGET)
    again = ledger.register_dataset("0x" + DATASET.hex(), POLICY.hex(), BUDGET)  # hex is the same id
    assert not first.already_recorded and again.already_recorded
    assert again.tx_hash != first.tx_hash
    assert ledger.get_dataset(DATASET) == DatasetRecord(DATASET, POLICY, BUDGET, 0, first.block_number)
    assert ledger.get_dataset(DATASET).remaining == BUDGET
    (log,) = logs(ledger, "DatasetRegistered")
    assert dict(log["args"]) == {"datasetId": DATASET, "policyHash": POLICY, "budget": BUDGET}
    assert log["transactionHash"].to_0x_hex() == first.tx_hash


@pytest.mark.parametrize("policy, budget", [(keccak_id("other policy"), BUDGET), (POLICY, BUDGET + 1)])
def test_registering_other_content_conflicts(ledger: Ledger, policy: bytes, budget: int) -> None:
    registered(ledger)
    with pytest.raises(LedgerConflictError) as caught:
        ledger.register_dataset(DATASET, policy, budget)
    assert caught.value.error == "DisclosureRegistryPolicyConflict"
    assert caught.value.arguments == {
        "datasetId": DATASET,
        "registeredPolicyHash": POLICY,
        "givenPolicyHash": policy,
    }
    assert ledger.get_dataset(DATASET).budget == BUDGET
    assert len(logs(ledger, "DatasetRegistered")) == 1


@pytest.mark.parametrize("policy, budget", [(bytes(32), BUDGET), (POLICY, 0)])
def test_invalid_policy_is_rejected(ledger: Ledger, policy: bytes, budget: int) -> None:
    with pytest.raises(LedgerRevertError) as caught:
        ledger.register_dataset(DATASET, policy, budget)
    assert type(caught.value) is LedgerRevertError
    assert caught.value.error == "DisclosureRegistryInvalidPolicy"
    assert caught.value.arguments == {"datasetId": DATASET}
    with pytest.raises(LedgerNotFoundError):
        ledger.get_dataset(DATASET)


def test_arguments_are_checked_before_sending(ledger: Ledger) -> None:
    with pytest.raises(LedgerValueError, match="budget"):
        ledger.register_dataset(DATASET, POLICY, 1 << 64)
    with pytest.raises(LedgerValueError, match="cost"):
        ledger.charge_budget(DATASET, keccak_id("q"), -1)
    with pytest.raises(LedgerValueError, match="policy_hash"):
        ledger.register_dataset(DATASET, b"short", BUDGET)


def test_unknown_dataset(ledger: Ledger) -> None:
    with pytest.raises(LedgerNotFoundError) as caught:
        ledger.get_dataset(DATASET)
    assert caught.value.error == "DisclosureRegistryUnknownDataset"
    assert caught.value.arguments == {"datasetId": DATASET}
    with pytest.raises(LedgerNotFoundError, match="DisclosureRegistryUnknownDataset"):
        ledger.charge_budget(DATASET, keccak_id("q-1"), 1)
    with pytest.raises((ContractLogicError, TransactionFailed)) as raw:
        ledger.contract(ChainContract.DISCLOSURE).functions.remaining(DATASET).call()
    error = revert_error(ChainContract.DISCLOSURE, "remaining", raw.value)
    assert isinstance(error, LedgerNotFoundError) and error.arguments == {"datasetId": DATASET}
    assert ledger.charge_of(DATASET, keccak_id("q-1")) == 0


def test_charge_round_trip_and_idempotent_retry(ledger: Ledger) -> None:
    registered(ledger)
    query = keccak_id("q-1")
    first = ledger.charge_budget(DATASET, query, 250_000)
    retry = ledger.charge_budget(DATASET, query, 250_000)
    assert not first.already_recorded and retry.already_recorded
    assert retry.block_number > first.block_number
    stored = ledger.get_dataset(DATASET)
    assert (stored.spent, stored.remaining) == (250_000, BUDGET - 250_000)  # paid once
    assert ledger.charge_of(DATASET, query) == 250_000
    assert ledger.charge_of(DATASET, keccak_id("q-2")) == 0
    assert ledger.charge_of(keccak_id("census"), query) == 0  # charges are per data set

    second = ledger.charge_budget(DATASET, keccak_id("q-2"), 500_000)
    assert not second.already_recorded
    assert ledger.get_dataset(DATASET).spent == 750_000
    charged = [
        (log["args"]["queryId"], log["args"]["cost"], log["args"]["spent"], log["transactionHash"].to_0x_hex())
        for log in logs(ledger, "BudgetCharged")
    ]
    assert charged == [
        (query, 250_000, 250_000, first.tx_hash),
        (keccak_id("q-2"), 500_000, 750_000, second.tx_hash),
    ]
    remaining = ledger.contract(ChainContract.DISCLOSURE).functions.remaining(DATASET).call()
    assert remaining == BUDGET - 750_000


def test_charge_with_another_cost_conflicts(ledger: Ledger) -> None:
    registered(ledger)
    query = keccak_id("q-1")
    ledger.charge_budget(DATASET, query, 250_000)
    with pytest.raises(LedgerConflictError) as caught:
        ledger.charge_budget(DATASET, query, 250_001)
    assert caught.value.error == "DisclosureRegistryChargeConflict"
    assert caught.value.arguments == {"datasetId": DATASET, "queryId": query}
    assert ledger.charge_of(DATASET, query) == 250_000
    assert ledger.get_dataset(DATASET).spent == 250_000


def test_zero_cost_is_rejected(ledger: Ledger) -> None:
    registered(ledger)
    with pytest.raises(LedgerRevertError) as caught:
        ledger.charge_budget(DATASET, keccak_id("q-1"), 0)
    assert type(caught.value) is LedgerRevertError
    assert caught.value.error == "DisclosureRegistryInvalidCharge"
    assert caught.value.arguments == {"datasetId": DATASET, "queryId": keccak_id("q-1")}


def test_budget_can_be_reached_but_not_passed(ledger: Ledger) -> None:
    registered(ledger, budget=1_000)
    ledger.charge_budget(DATASET, keccak_id("q-1"), 600)
    with pytest.raises(LedgerBudgetExceededError) as caught:
        ledger.charge_budget(DATASET, keccak_id("q-2"), 401)  # one unit past
    assert caught.value.error == "DisclosureRegistryBudgetExceeded"
    assert caught.value.arguments == {"datasetId": DATASET, "cost": 401, "remaining": 400}
    assert "remaining=400" in str(caught.value)
    assert ledger.charge_of(DATASET, keccak_id("q-2")) == 0

    exact = ledger.charge_budget(DATASET, keccak_id("q-2"), 400)
    assert not exact.already_recorded
    stored = ledger.get_dataset(DATASET)
    assert (stored.spent, stored.remaining) == (1_000, 0)
    # A retry of a charged query still succeeds at the limit: it spends nothing.
    assert ledger.charge_budget(DATASET, keccak_id("q-2"), 400).already_recorded
    with pytest.raises(LedgerBudgetExceededError) as caught:
        ledger.charge_budget(DATASET, keccak_id("q-3"), 1)
    assert caught.value.arguments["remaining"] == 0
    # The largest cost the contract takes cannot overflow the sum either.
    with pytest.raises(LedgerBudgetExceededError):
        ledger.charge_budget(DATASET, keccak_id("q-3"), (1 << 64) - 1)
    assert len(logs(ledger, "BudgetCharged")) == 2


def test_full_uint64_budget(ledger: Ledger) -> None:
    top = (1 << 64) - 1
    registered(ledger, budget=top)
    ledger.charge_budget(DATASET, keccak_id("q-1"), top - 1)
    ledger.charge_budget(DATASET, keccak_id("q-2"), 1)
    assert ledger.get_dataset(DATASET).remaining == 0


def test_only_registrars_register_and_recorders_charge(ledger: Ledger, stranger: Ledger) -> None:
    with pytest.raises(LedgerUnauthorizedError) as caught:
        stranger.register_dataset(DATASET, POLICY, BUDGET)
    assert caught.value.error == "AccessControlUnauthorizedAccount"
    assert caught.value.arguments == {"account": stranger.sender, "neededRole": Role.REGISTRAR.value}
    registered(ledger)
    with pytest.raises(LedgerUnauthorizedError) as caught:
        stranger.charge_budget(DATASET, keccak_id("q-1"), 1)
    assert caught.value.arguments == {"account": stranger.sender, "neededRole": Role.RECORDER.value}
    assert stranger.get_dataset(DATASET).spent == 0  # anyone reads

    # A role on LineageRegistry is no role here: the contracts keep their own.
    ledger.grant_role(ChainContract.REGISTRY, Role.RECORDER, stranger.sender)
    with pytest.raises(LedgerUnauthorizedError):
        stranger.charge_budget(DATASET, keccak_id("q-1"), 1)

    ledger.grant_role(ChainContract.DISCLOSURE, Role.RECORDER, stranger.sender)
    assert stranger.has_role(ChainContract.DISCLOSURE, Role.RECORDER, stranger.sender)
    assert not stranger.charge_budget(DATASET, keccak_id("q-1"), 1).already_recorded
    with pytest.raises(LedgerUnauthorizedError):  # charging does not make it a registrar
        stranger.register_dataset(keccak_id("census"), POLICY, BUDGET)
    assert ledger.get_dataset(DATASET).spent == 1


def test_deployer_holds_every_role(ledger: Ledger) -> None:
    for role in (Role.DEFAULT_ADMIN, Role.REGISTRAR, Role.RECORDER):
        assert ledger.has_role(ChainContract.DISCLOSURE, role, ledger.sender)
    assert ledger.contract(ChainContract.DISCLOSURE).functions.REGISTRAR_ROLE().call() == Role.REGISTRAR.value
    assert ledger.contract(ChainContract.DISCLOSURE).functions.RECORDER_ROLE().call() == Role.RECORDER.value
