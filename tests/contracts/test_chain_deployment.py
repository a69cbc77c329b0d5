"""Deploying, recording and re-attaching to a deployment through its manifest."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from contracts import (
    MARKET_FEE_BPS,
    ChainContract,
    DeploymentManifest,
    Ledger,
    LedgerConflictError,
    LedgerConnectionError,
    LedgerManifestError,
    LedgerValueError,
    Role,
    RoundMetrics,
    connect,
    keccak_id,
)
from contracts.manifest import manifest_path
from flai.settings import Settings

TASK = keccak_id("census-logreg")


def test_manifest_round_trip_attaches_to_the_same_state(
    ledger: Ledger, chain_url: str | None, tmp_path: Path
) -> None:
    ledger.register_task(TASK, ledger.sender, "bafyspec", "census")
    ledger.record_round(TASK, 0, "bafym", bytes(32), bytes(32), bytes(32), RoundMetrics(1, 2, 3, 4))
    path = manifest_path(tmp_path / "chain", ledger.chain.chain_id)
    saved = DeploymentManifest.load(path)
    assert saved == ledger.manifest
    assert set(saved.addresses) == set(ChainContract)
    assert (
        json.loads(path.read_text())["addresses"]["LineageRegistry"]
        == ledger.contract(ChainContract.REGISTRY).address
    )

    again = Ledger.open(tmp_path / "chain", chain_url)
    assert again.manifest == ledger.manifest
    assert again.get_round(TASK, 0).model_cid == "bafym"
    assert again.register_task(TASK, ledger.sender, "bafyspec", "census").already_recorded


def test_attach_checks_chain_and_code(ledger: Ledger) -> None:
    with pytest.raises(LedgerManifestError, match="is for chain 1,"):
        Ledger.attach(ledger.chain, replace(ledger.manifest, chain_id=1), ledger.sender)
    empty = "0x" + "11" * 20
    gone = replace(ledger.manifest, addresses={**ledger.manifest.addresses, ChainContract.TOKEN: empty})
    with pytest.raises(LedgerManifestError, match="no contract code for FLAIToken"):
        Ledger.attach(ledger.chain, gone, ledger.sender)


def test_stale_manifest_redeploys_only_on_the_embedded_chain(
    ledger: Ledger, chain_url: str | None, tmp_path: Path
) -> None:
    state_dir = tmp_path / "other"
    stale = replace(ledger.manifest, addresses={c: "0x" + "22" * 20 for c in ChainContract})
    stale.save(state_dir)
    if chain_url is None:  # another process's embedded chain: gone with it, so deploy anew
        fresh = Ledger.open(state_dir)
        assert (
            fresh.manifest != stale
            and DeploymentManifest.load(manifest_path(state_dir, stale.chain_id)) == fresh.manifest
        )
    else:  # a node that lost the contracts: refuse rather than fork lineage silently
        with pytest.raises(LedgerManifestError, match="remove the manifest"):
            Ledger.open(state_dir, chain_url)


def test_a_manifest_from_before_a_contract_was_added_is_completed(
    ledger: Ledger, chain_url: str | None, tmp_path: Path
) -> None:
    """A deployment made before DisclosureRegistry existed keeps its contracts and state and
    gets the new contract deployed next to them."""
    ledger.register_task(TASK, ledger.sender, "bafyspec", "census")
    path = manifest_path(tmp_path / "chain", ledger.chain.chain_id)
    document = json.loads(path.read_text())
    del document["addresses"]["DisclosureRegistry"]
    path.write_text(json.dumps(document))
    with pytest.raises(LedgerManifestError, match="missing or malformed field: 'DisclosureRegistry'"):
        DeploymentManifest.load(path)
    old = DeploymentManifest.load(path, partial=True)
    assert old.missing == (ChainContract.DISCLOSURE,)
    with pytest.raises(LedgerManifestError, match="has no address for DisclosureRegistry: Ledger.open"):
        Ledger.attach(ledger.chain, old, ledger.sender)

    upgraded = Ledger.open(tmp_path / "chain", chain_url)
    added = upgraded.manifest.addresses[ChainContract.DISCLOSURE]
    assert added != ledger.manifest.addresses[ChainContract.DISCLOSURE]
    assert upgraded.manifest == replace(old, addresses={**old.addresses, ChainContract.DISCLOSURE: added})
    assert DeploymentManifest.load(path) == upgraded.manifest
    assert upgraded.get_task(TASK).dataset_name == "census"  # the lineage is the same
    assert not upgraded.register_dataset(TASK, keccak_id("policy"), 10).already_recorded
    assert Ledger.open(tmp_path / "chain", chain_url).manifest == upgraded.manifest  # deployed once


def test_a_deployment_from_before_the_market_gets_it_and_the_pool(
    ledger: Ledger, chain_url: str | None, tmp_path: Path
) -> None:
    """The market and the Uniswap contracts are deployed next to an older deployment, each
    after those it takes (the market the token, the router the factory and WETH)."""
    added = (
        ChainContract.MARKET, ChainContract.WETH, ChainContract.UNISWAP_FACTORY, ChainContract.UNISWAP_ROUTER
    )
    path = manifest_path(tmp_path / "chain", ledger.chain.chain_id)
    document = json.loads(path.read_text())
    for contract in added:
        del document["addresses"][contract.value]
    path.write_text(json.dumps(document))
    assert DeploymentManifest.load(path, partial=True).missing == added

    upgraded = Ledger.open(tmp_path / "chain", chain_url)
    kept = {c: a for c, a in upgraded.manifest.addresses.items() if c not in added}
    assert kept == {c: a for c, a in ledger.manifest.addresses.items() if c not in added}
    market, router = upgraded.contract(ChainContract.MARKET), upgraded.contract(ChainContract.UNISWAP_ROUTER)
    assert market.functions.token().call() == upgraded.contract(ChainContract.TOKEN).address
    assert market.functions.treasury().call() == upgraded.sender
    assert market.functions.feeBps().call() == MARKET_FEE_BPS
    assert router.functions.factory().call() == upgraded.contract(ChainContract.UNISWAP_FACTORY).address
    assert router.functions.WETH().call() == upgraded.contract(ChainContract.WETH).address
    assert all(upgraded.has_role(ChainContract.MARKET, role, upgraded.sender)
               for role in (Role.DEFAULT_ADMIN, Role.PRICING, Role.OPERATOR, Role.SETTLER))


def test_unreadable_manifests(tmp_path: Path) -> None:
    path = tmp_path / "deployment-1.json"
    with pytest.raises(LedgerManifestError, match="does not exist"):
        DeploymentManifest.load(path)
    path.write_text("{not json")
    with pytest.raises(LedgerManifestError, match="unreadable"):
        DeploymentManifest.load(path)
    path.write_text(
        json.dumps({"format": 1, "chain_id": 1, "deployer": "x", "deployment_block": 1, "addresses": {}})
    )
    with pytest.raises(LedgerManifestError, match="missing or malformed"):
        DeploymentManifest.load(path)
    addresses = {c.value: "0x" + "ab" * 20 for c in ChainContract}
    path.write_text(
        json.dumps(
            {"format": 1, "chain_id": 1, "deployer": "x", "deployment_block": 1, "addresses": addresses}
        )
    )
    with pytest.raises(LedgerManifestError, match="not checksummed"):
        DeploymentManifest.load(path)


def test_one_embedded_chain_per_process(tmp_path: Path) -> None:
    assert connect() is connect(None)
    first = Ledger.open(tmp_path / "a")
    first.register_task(TASK, first.sender, "s", "d")
    assert Ledger.open(tmp_path / "a").get_task(TASK).dataset_name == "d"


def test_from_settings_uses_chain_url_and_data_dir(tmp_path: Path) -> None:
    ledger = Ledger.from_settings(Settings(data_dir=tmp_path, chain_url=None))
    assert manifest_path(tmp_path / "chain", ledger.manifest.chain_id).is_file()


def test_private_key_signer(anvil_url: str, tmp_path: Path) -> None:
    # An account the node does not know: every transaction must be signed here and sent raw.
    key = "0x" + keccak_id("flai test signer").hex()
    address = Account.from_key(key).address
    chain = connect(anvil_url)
    assert address not in chain.web3.eth.accounts
    funding = chain.web3.eth.send_transaction(
        {"from": chain.unlocked_account(), "to": address, "value": 10**18}
    )
    chain.web3.eth.wait_for_transaction_receipt(funding)

    ledger = Ledger.open(tmp_path / "chain", anvil_url, private_key=key)
    assert ledger.sender == address and ledger.manifest.deployer == address
    assert not ledger.register_task(TASK, address, "s", "d").already_recorded
    with pytest.raises(LedgerValueError, match="private_key"):
        Ledger.open(tmp_path / "chain", anvil_url, private_key="0x1234")


def test_unreachable_node_and_bad_url() -> None:
    with pytest.raises(LedgerConnectionError, match="127.0.0.1:9"):
        connect("http://127.0.0.1:9")
    with pytest.raises(LedgerValueError, match="url"):
        connect("ws://127.0.0.1:8545")


def test_a_record_that_loses_a_race_names_its_error(anvil_url: str, tmp_path: Path) -> None:
    """Two different rounds 0 sent before either is mined: the second passes gas estimation,
    fails once mined, and is replayed to name the conflict."""
    ledger = Ledger.open(tmp_path / "chain", anvil_url)
    web3, metrics = ledger.chain.web3, RoundMetrics(1, 2, 3, 4)
    ledger.register_task(TASK, ledger.sender, "s", "d")
    registry = ledger.contract(ChainContract.REGISTRY)
    web3.provider.make_request("evm_setAutomine", [False])
    try:
        registry.functions.recordRound(
            TASK, 0, "first", bytes(32), bytes(32), bytes(32), metrics.as_tuple()
        ).transact({"from": ledger.sender, "gas": 500_000})
        outcome: dict[str, Exception] = {}

        def second() -> None:
            try:
                ledger.record_round(TASK, 0, "second", bytes(32), bytes(32), bytes(32), metrics)
            except Exception as exc:  # handed to the main thread
                outcome["error"] = exc

        racer = threading.Thread(target=second)
        racer.start()
        deadline = time.monotonic() + 10
        while int(web3.provider.make_request("txpool_status", [])["result"]["pending"], 16) < 2:
            assert racer.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.02)
        web3.provider.make_request("evm_mine", [])
        racer.join(timeout=10)
    finally:
        web3.provider.make_request("evm_setAutomine", [True])
    block = web3.eth.get_block("latest")
    assert [web3.eth.get_transaction_receipt(tx)["status"] for tx in block["transactions"]] == [1, 0]
    assert isinstance(outcome["error"], LedgerConflictError)
    assert outcome["error"].error == "LineageRegistryRoundConflict"
    assert ledger.get_round(TASK, 0).model_cid == "first"
