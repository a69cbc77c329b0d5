"""LineageRegistry through the Ledger: records, idempotent retries, conflicts, roles, events."""

from __future__ import annotations

import pytest

from contracts import (
    ChainContract,
    Ledger,
    LedgerConflictError,
    LedgerNotFoundError,
    LedgerRevertError,
    LedgerUnauthorizedError,
    Role,
    RoundMetrics,
    keccak_id,
)

TASK = keccak_id("heart-fedavg")
METRICS = RoundMetrics.from_floats(0.8125, 0.4321, participants=3, samples=1200)


def record(ledger: Ledger, round: int, cid: str = "bafymodel", metrics: RoundMetrics = METRICS):
    return ledger.record_round(TASK, round, cid, bytes([round]) * 32, b"\x0c" * 32, b"\x0a" * 32, metrics)


def registered(ledger: Ledger) -> Ledger:
    ledger.register_task(TASK, ledger.sender, "bafyspec", "heart")
    return ledger


def test_round_round_trip(ledger: Ledger) -> None:
    registered(ledger)
    first = record(ledger, 0)
    second = record(ledger, 1, cid="bafymodel1")
    assert not first.already_recorded and not second.already_recorded
    assert second.block_number > first.block_number
    assert ledger.round_count(TASK) == 2
    stored = ledger.get_round(TASK, 0)
    assert stored.model_cid == "bafymodel"
    assert stored.model_sha256 == bytes(32)
    assert stored.participants_commitment == b"\x0c" * 32
    assert stored.quality_report_hash == b"\x0a" * 32
    assert stored.metrics == METRICS and stored.metrics.accuracy == 0.8125
    assert stored.recorded_block == first.block_number
    assert [r.model_cid for r in ledger.rounds(TASK)] == ["bafymodel", "bafymodel1"]
    task = ledger.get_task(TASK)
    assert (task.owner, task.spec_cid, task.dataset_name, task.round_count) == (
        ledger.sender,
        "bafyspec",
        "heart",
        2,
    )


def test_identical_round_is_a_no_op_without_event(ledger: Ledger) -> None:
    registered(ledger)
    first = record(ledger, 0)
    retry = record(ledger, 0)
    assert retry.already_recorded and retry.tx_hash != first.tx_hash
    events = ledger.contract(ChainContract.REGISTRY).events.RoundRecorded()
    logs = events.get_logs(from_block=ledger.manifest.deployment_block, argument_filters={"taskId": TASK})
    assert len(logs) == 1
    assert logs[0]["args"]["round"] == 0 and logs[0]["transactionHash"].to_0x_hex() == first.tx_hash
    assert logs[0]["args"]["metrics"]["samples"] == 1200
    assert ledger.round_count(TASK) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"cid": "bafyother"},
        {"metrics": RoundMetrics(METRICS.accuracy_ppm + 1, METRICS.loss_micro, 3, 1200)},
    ],
)
def test_round_with_other_content_conflicts(ledger: Ledger, change: dict) -> None:
    registered(ledger)
    record(ledger, 0)
    with pytest.raises(LedgerConflictError) as caught:
        record(ledger, 0, **change)
    assert caught.value.error == "LineageRegistryRoundConflict"
    assert caught.value.arguments == {"taskId": TASK, "round": 0}
    assert "LineageRegistryRoundConflict(taskId=0x" in str(caught.value)
    assert ledger.get_round(TASK, 0).model_cid == "bafymodel"


def test_rounds_must_come_in_order(ledger: Ledger) -> None:
    registered(ledger)
    with pytest.raises(LedgerRevertError) as caught:
        record(ledger, 1)
    assert caught.value.error == "LineageRegistryRoundOutOfOrder"
    assert caught.value.arguments == {"taskId": TASK, "round": 1, "expected": 0}


def test_unknown_task_and_round(ledger: Ledger) -> None:
    with pytest.raises(LedgerNotFoundError, match="LineageRegistryUnknownTask"):
        record(ledger, 0)
    with pytest.raises(LedgerNotFoundError, match="LineageRegistryUnknownTask"):
        ledger.get_task(TASK)
    registered(ledger)
    with pytest.raises(LedgerNotFoundError) as caught:
        ledger.get_round(TASK, 0)
    assert caught.value.arguments == {"taskId": TASK, "round": 0}
    assert ledger.rounds(TASK) == [] and ledger.round_count(keccak_id("nobody")) == 0


def test_task_registration_is_idempotent_and_emits_once(ledger: Ledger) -> None:
    first = ledger.register_task(TASK, ledger.sender, "bafyspec", "heart")
    again = ledger.register_task(TASK, ledger.sender, "bafyspec", "heart")
    assert not first.already_recorded and again.already_recorded
    with pytest.raises(LedgerConflictError, match="LineageRegistryTaskConflict"):
        ledger.register_task(TASK, ledger.sender, "bafyspec", "census")
    logs = (
        ledger.contract(ChainContract.REGISTRY)
        .events.TaskRegistered()
        .get_logs(from_block=ledger.manifest.deployment_block)
    )
    assert [(log["args"]["taskId"], log["args"]["owner"], log["args"]["datasetName"]) for log in logs] == [
        (TASK, ledger.sender, "heart")
    ]


def test_zero_owner_is_rejected(ledger: Ledger) -> None:
    with pytest.raises(LedgerRevertError) as caught:
        ledger.register_task(TASK, "0x" + "00" * 20, "bafyspec", "heart")
    assert caught.value.error == "LineageRegistryInvalidOwner"


def test_query_round_trip_idempotency_and_conflict(ledger: Ledger) -> None:
    query = keccak_id("q-1")
    args = (keccak_id("SELECT 1"), b"\x0c" * 32, 2, 250_000, keccak_id("result"))
    first = ledger.record_query(query, *args)
    retry = ledger.record_query(query, *args)
    assert not first.already_recorded and retry.already_recorded
    stored = ledger.get_query(query)
    assert (stored.suppressed_groups, stored.epsilon_spent, stored.recorded_block) == (
        2,
        0.25,
        first.block_number,
    )
    assert stored.result_hash == keccak_id("result")
    logs = (
        ledger.contract(ChainContract.REGISTRY)
        .events.QueryRecorded()
        .get_logs(from_block=ledger.manifest.deployment_block)
    )
    assert len(logs) == 1 and logs[0]["args"]["epsilonSpentMicro"] == 250_000
    with pytest.raises(LedgerConflictError) as caught:
        ledger.record_query(query, *args[:3], 250_001, args[4])
    assert caught.value.arguments == {"queryId": query}
    with pytest.raises(LedgerNotFoundError, match="LineageRegistryUnknownQuery"):
        ledger.get_query(keccak_id("q-2"))


def test_only_recorders_record_and_registrars_register(ledger: Ledger, stranger: Ledger) -> None:
    registered(ledger)
    with pytest.raises(LedgerUnauthorizedError) as caught:
        record(stranger, 0)
    assert caught.value.error == "AccessControlUnauthorizedAccount"
    assert caught.value.arguments == {"account": stranger.sender, "neededRole": Role.RECORDER.value}
    with pytest.raises(LedgerUnauthorizedError):
        stranger.record_query(keccak_id("q"), bytes(32), bytes(32), 0, 0, bytes(32))
    with pytest.raises(LedgerUnauthorizedError) as caught:
        stranger.register_task(keccak_id("other"), stranger.sender, "s", "d")
    assert caught.value.arguments["neededRole"] == Role.REGISTRAR.value
    assert ledger.round_count(TASK) == 0

    # Roles can be handed to other accounts (an orchestrator, a future DAO) without redeploying.
    ledger.grant_role(ChainContract.REGISTRY, Role.RECORDER, stranger.sender)
    assert stranger.has_role(ChainContract.REGISTRY, Role.RECORDER, stranger.sender)
    assert not record(stranger, 0).already_recorded
    with pytest.raises(LedgerUnauthorizedError):  # recording does not make it an admin
        stranger.grant_role(ChainContract.REGISTRY, Role.RECORDER, stranger.sender)
