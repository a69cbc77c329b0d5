"""InferenceMarket and the Uniswap V2 pool of FLAI's deployment through contracts.market, on the
embedded chain and on anvil: tiered and demand-driven prices against an off-chain EIP-1559
calculation, escrow that ends exactly once, revenue claimed by share, a router swap that pays
exactly the constant-product amount, and ``flai market prices|seed|buy``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from typer.testing import CliRunner
from web3.exceptions import ContractLogicError

from cli import app
from cli.rewards import flai_cell, flai_text
from contracts import (
    MARKET_FEE_BPS,
    ChainContract,
    Governance,
    Ledger,
    LedgerBudgetExceededError,
    LedgerConflictError,
    LedgerDeadlinePassedError,
    LedgerNotFoundError,
    LedgerPriceTooHighError,
    LedgerRevertError,
    LedgerTooEarlyError,
    LedgerUnauthorizedError,
    Market,
    Role,
    keccak_id,
)
from contracts.compiled import UNISWAP_PAIR, compiled
from contracts.market import ONE, Dynamics, PoolReserves, RequestState
from contracts.revert import revert_error
from flai.settings import get_settings
from tasks.chain import ledger as stack_ledger

MODEL = keccak_id("heart-fedavg")
BATCHES, PRICES = [1, 8, 32], [100 * 10**15, 700 * 10**15, 2_500 * 10**15]
HELD = 10**24
ROW_BUDGET = 1_000
WINDOW = 1_000
DYNAMICS = Dynamics(target=2, window_s=WINDOW, min_multiplier=ONE // 2, max_multiplier=ONE * 3 // 2)
DAY = 24 * 3600
MARKET = ChainContract.MARKET
MARKET_ROLES = (Role.DEFAULT_ADMIN, Role.PRICING, Role.OPERATOR, Role.SETTLER)


@pytest.fixture
def market(ledger: Ledger) -> Market:
    """A fresh deployment's market; the deployer holds every role and is the treasury."""
    return Market(ledger)


@pytest.fixture
def priced(market: Market) -> Market:
    market.set_tiers(MODEL, BATCHES, PRICES)
    market.set_row_budget(MODEL, ROW_BUDGET)
    return market


def consumer(market: Market, index: int) -> Market:
    """Unlocked account ``index`` holding FLAI."""
    other = market.as_sender(market.ledger.chain.unlocked_account(index))
    market.ledger.mint_tokens(other.sender, HELD)
    return other


def now(market: Market) -> int:
    return market.ledger.chain.web3.eth.get_block("latest")["timestamp"]


def advance_to(market: Market, timestamp: int) -> None:
    """Mines a block at ``timestamp`` (anvil: about then), which calls and the next transaction see."""
    web3 = market.ledger.chain.web3
    if market.ledger.chain.embedded:
        web3.provider.ethereum_tester.time_travel(timestamp)
    else:
        web3.provider.make_request("evm_increaseTime", [timestamp - now(market)])
        web3.provider.make_request("evm_mine", [])


def address_of(market: Market, contract: ChainContract) -> str:
    return market.ledger.contract(contract).address


def market_error(action: Callable[[], Any]) -> str:
    """The name of the InferenceMarket error a raw web3 call reverts with."""
    with pytest.raises((ContractLogicError, TransactionFailed)) as caught:
        action()
    return revert_error(ChainContract.MARKET, "raw", caught.value).error


def eip1559_step(multiplier: int, used: int, dynamics: Dynamics = DYNAMICS) -> int:
    """One window of the contract's rule, computed off chain: demand capped at twice the
    target, a change of at most 1/8, clamped to the bounds.

    >>> eip1559_step(ONE, 4), eip1559_step(ONE, 0), eip1559_step(ONE, 99) == eip1559_step(ONE, 4)
    (1125000000000000000, 875000000000000000, True)
    """
    target = dynamics.target
    counted = min(used, 2 * target)
    if counted >= target:
        moved = multiplier + multiplier * (counted - target) // target // 8
    else:
        moved = multiplier - multiplier * (target - counted) // target // 8
    return min(max(moved, dynamics.min_multiplier), dynamics.max_multiplier)


# -- pricing ----------------------------------------------------------------------------------


def test_tiers_price_by_batch(priced: Market) -> None:
    quotes = [priced.quote(MODEL, batch) for batch in (1, 2, 8, 9, 32)]
    assert quotes == [PRICES[0], PRICES[1], PRICES[1], PRICES[2], PRICES[2]]
    prices = priced.prices(MODEL)
    assert [(t.max_batch, t.price) for t in prices.tiers] == list(zip(BATCHES, PRICES, strict=True))
    assert prices.dynamics is None and prices.multiplier == ONE
    for batch in (0, 33):
        with pytest.raises(LedgerRevertError) as caught:
            priced.quote(MODEL, batch)
        assert caught.value.error == "InferenceMarketInvalidBatch"
        assert caught.value.arguments == {"modelId": MODEL, "batch": batch, "maxBatch": 32}
    with pytest.raises(LedgerNotFoundError):
        priced.quote(keccak_id("no such model"), 1)
    with pytest.raises(LedgerRevertError, match="InferenceMarketInvalidTiers"):
        priced.set_tiers(MODEL, [8, 8], [1, 2])
    assert priced.priced_models() == [MODEL]


def test_pricing_needs_the_role(priced: Market) -> None:
    stranger = priced.as_sender(priced.ledger.chain.unlocked_account(1))
    with pytest.raises(LedgerUnauthorizedError):
        stranger.set_tiers(MODEL, [1], [1])
    with pytest.raises(LedgerUnauthorizedError):
        stranger.set_dynamics(MODEL, *vars(DYNAMICS).values())
    with pytest.raises(LedgerUnauthorizedError):
        stranger.set_row_budget(MODEL, 10**9)
    with pytest.raises(LedgerRevertError, match="InferenceMarketInvalidDynamics"):
        priced.set_dynamics(MODEL, 2, WINDOW, 1, 10_001)  # wider than MAX_MULTIPLIER_RANGE
    # The deployer holds every market role and may grant them.
    assert all(priced.ledger.has_role(MARKET, role, priced.sender) for role in MARKET_ROLES)
    # The SuperDAO's timelock may reprice any model; the SubDAOs' by its proposals.
    super_timelock = Governance(priced.ledger).timelock_address("super")
    assert priced.ledger.has_role(MARKET, Role.PRICING, super_timelock)
    assert not priced.ledger.has_role(MARKET, Role.OPERATOR, super_timelock)
    priced.ledger.grant_role(MARKET, Role.PRICING, stranger.sender)
    stranger.set_tiers(MODEL, [4], [1])
    assert [(t.max_batch, t.price) for t in priced.prices(MODEL).tiers] == [(4, 1)]


def test_dynamic_price_follows_demand_like_eip1559(priced: Market) -> None:
    buyer = consumer(priced, 1)
    priced.set_dynamics(MODEL, *vars(DYNAMICS).values())
    start = priced.prices(MODEL).window_start
    expected = ONE
    jobs = iter(range(1_000))

    def requests(count: int) -> None:
        for _ in range(count):
            paid = buyer.quote(MODEL, 8)
            request = buyer.request(MODEL, 8, paid, now(priced) + DAY, key=keccak_id(f"job-{next(jobs)}"))
            assert buyer.get_request(request).price == paid == PRICES[1] * expected // ONE

    # Busy windows push the price up by 1/8 at most (5 requests count as 4, twice the target),
    # up to the ceiling; an on-target window leaves it.
    for window, used in enumerate([5, 3, 2, 4, 4, 4, 4]):
        advance_to(priced, start + window * WINDOW + WINDOW // 2)
        prices = priced.prices(MODEL)
        assert (prices.multiplier, prices.window_start, prices.used) == (expected, start + window * WINDOW, 0)
        requests(used)
        assert priced.prices(MODEL).used == used
        expected = eip1559_step(expected, used)
    assert expected == DYNAMICS.max_multiplier

    # Quiet windows bring it down 1/8 each, however many passed since the last request.
    last = 6
    for quiet in (1, 3, 2):
        last += quiet
        advance_to(priced, start + last * WINDOW + WINDOW // 2)
        for _ in range(quiet - 1):
            expected = eip1559_step(expected, 0)
        assert priced.prices(MODEL).multiplier == expected
        assert priced.quote(MODEL, 32) == PRICES[2] * expected // ONE
        expected = eip1559_step(expected, 0)  # the window just entered stays quiet too

    # A year without requests ends at the floor, and the next request pays little gas for it.
    advance_to(priced, start + 400 * DAY)
    assert priced.prices(MODEL).multiplier == DYNAMICS.min_multiplier
    request = buyer.request(MODEL, 1, PRICES[0], now(priced) + DAY, key=b"\x01" * 32)
    assert buyer.get_request(request).price == PRICES[0] // 2
    assert priced.prices(MODEL).multiplier == DYNAMICS.min_multiplier


# -- escrow -----------------------------------------------------------------------------------


def test_escrow_is_released_exactly_once(priced: Market) -> None:
    buyer, treasury = consumer(priced, 1), priced.sender
    token = priced.ledger
    before = token.token_balance(treasury)
    request = buyer.request(MODEL, 8, PRICES[1], now(priced) + DAY, key=keccak_id("job"))
    assert token.token_balance(buyer.sender) == HELD - PRICES[1]
    assert token.token_balance(address_of(priced, ChainContract.MARKET)) == PRICES[1]
    assert priced.request_state(request) is RequestState.ESCROWED

    assert priced.release(request) is RequestState.RELEASED
    fee = PRICES[1] * MARKET_FEE_BPS // 10_000
    assert token.token_balance(treasury) == before + fee
    assert priced.revenue(MODEL) == (0, PRICES[1] - fee, PRICES[1] - fee)  # held: no shares yet
    # A retried release or a late refund returns the state and moves nothing.
    assert priced.release(request) is RequestState.RELEASED
    assert priced.refund(request) is RequestState.RELEASED
    assert token.token_balance(treasury) == before + fee
    assert token.token_balance(address_of(priced, ChainContract.MARKET)) == PRICES[1] - fee
    # The contract itself refuses a second ending.
    functions = priced.ledger.contract(ChainContract.MARKET).functions
    for end in (functions.release, functions.refund):
        assert market_error(lambda: end(request).call({"from": treasury})) == "InferenceMarketRequestEnded"
    with pytest.raises(LedgerNotFoundError):
        priced.release(keccak_id("never requested"))


def test_a_retried_request_escrows_once(priced: Market) -> None:
    buyer = consumer(priced, 1)
    deadline = now(priced) + DAY
    first = buyer.request(MODEL, 8, PRICES[1], deadline, key=keccak_id("job"))
    again = buyer.request(MODEL, 8, PRICES[1], deadline, key=keccak_id("job"))
    assert first == again
    assert priced.ledger.token_balance(buyer.sender) == HELD - PRICES[1]
    # The contract answers a repeated request with the same id and takes nothing.
    functions = priced.ledger.contract(ChainContract.MARKET).functions
    repeated = functions.request(MODEL, 8, PRICES[1], deadline, keccak_id("job"))
    assert repeated.call({"from": buyer.sender}) == first
    with pytest.raises(LedgerConflictError):
        buyer.request(MODEL, 9, PRICES[2], deadline, key=keccak_id("job"))
    with pytest.raises(LedgerPriceTooHighError) as caught:
        buyer.request(MODEL, 9, PRICES[2] - 1, deadline, key=keccak_id("other job"))
    assert caught.value.arguments["price"] == PRICES[2]
    with pytest.raises(LedgerRevertError, match="InferenceMarketInvalidDeadline"):
        buyer.request(MODEL, 1, PRICES[0], now(priced), key=keccak_id("late job"))


def test_a_consumer_gets_at_most_the_models_row_budget(priced: Market) -> None:
    buyer, other = consumer(priced, 1), consumer(priced, 2)
    deadline = now(priced) + DAY
    priced.set_row_budget(MODEL, 64)
    assert priced.prices(MODEL).row_budget == 64
    first = buyer.request(MODEL, 32, PRICES[2], deadline, key=keccak_id("first"))
    buyer.request(MODEL, 32, PRICES[2], deadline, key=keccak_id("second"))
    assert priced.rows_served(MODEL, buyer.sender) == 64
    with pytest.raises(LedgerBudgetExceededError) as caught:
        buyer.request(MODEL, 1, PRICES[0], deadline, key=keccak_id("third"))
    assert caught.value.arguments == {"modelId": MODEL, "consumer": buyer.sender, "requested": 65, "budget": 64}
    assert priced.ledger.token_balance(buyer.sender) == HELD - 2 * PRICES[2]  # nothing escrowed
    # A retry of a request made is still answered, and takes nothing.
    assert buyer.request(MODEL, 32, PRICES[2], deadline, key=keccak_id("first")) == first
    # Each consumer has its own budget; a refunded request gives its rows back.
    other.request(MODEL, 1, PRICES[0], deadline, key=keccak_id("first"))
    assert priced.refund(first) is RequestState.REFUNDED
    assert priced.rows_served(MODEL, buyer.sender) == 32
    buyer.request(MODEL, 1, PRICES[0], deadline, key=keccak_id("third"))
    # The owners may stop the model's sales: a budget of 0 (as a model never given one) sells nothing.
    priced.set_row_budget(MODEL, 0)
    with pytest.raises(LedgerBudgetExceededError):
        other.request(MODEL, 1, PRICES[0], deadline, key=keccak_id("second"))
    unbudgeted = keccak_id("tiers, no row budget")
    priced.set_tiers(unbudgeted, [1], [1])
    with pytest.raises(LedgerBudgetExceededError):
        other.request(unbudgeted, 1, 1, deadline, key=keccak_id("third"))


def test_refunds_on_failure_and_after_the_deadline(priced: Market) -> None:
    buyer = consumer(priced, 1)
    stranger = priced.as_sender(priced.ledger.chain.unlocked_account(2))
    deadline = now(priced) + DAY
    failed = buyer.request(MODEL, 1, PRICES[0], deadline, key=keccak_id("failed"))
    late = buyer.request(MODEL, 1, PRICES[0], deadline, key=keccak_id("late"))
    assert priced.ledger.token_balance(buyer.sender) == HELD - 2 * PRICES[0]

    assert priced.refund(failed) is RequestState.REFUNDED  # the operator, at any time
    assert priced.refund(failed) is RequestState.REFUNDED
    assert priced.ledger.token_balance(buyer.sender) == HELD - PRICES[0]

    with pytest.raises(LedgerTooEarlyError) as caught:
        buyer.refund(late)
    assert caught.value.arguments["refundableAfter"] == deadline
    with pytest.raises(LedgerUnauthorizedError):
        stranger.refund(late)
    advance_to(priced, deadline + 10)
    with pytest.raises(LedgerDeadlinePassedError):
        priced.release(late)
    assert buyer.refund(late) is RequestState.REFUNDED
    assert priced.ledger.token_balance(buyer.sender) == HELD
    assert priced.ledger.token_balance(address_of(priced, ChainContract.MARKET)) == 0


# -- revenue ----------------------------------------------------------------------------------


def test_contributors_claim_revenue_by_share(priced: Market) -> None:
    buyer, treasury = consumer(priced, 1), priced.sender
    contributors = [priced.as_sender(priced.ledger.chain.unlocked_account(i)) for i in (3, 4, 5)]
    accounts, shares = [c.sender for c in contributors], [1, 2, 4]
    fees_before = priced.ledger.token_balance(treasury)
    released = fees = 0

    def sell(batch: int, key: str) -> None:
        nonlocal released, fees
        request = buyer.request(MODEL, batch, PRICES[-1] + 1, now(priced) + DAY, key=keccak_id(key))
        priced.release(request)
        price = priced.get_request(request).price
        fee = price * MARKET_FEE_BPS // 10_000
        released, fees = released + price - fee, fees + fee

    sell(8, "before shares")  # held until the shares are set
    assert [priced.claimable(MODEL, a) for a in accounts] == [0, 0, 0]
    assert priced.set_shares(MODEL, accounts, shares).already_recorded is False
    assert priced.set_shares(MODEL, accounts, shares).already_recorded is True
    with pytest.raises(LedgerConflictError):
        priced.set_shares(MODEL, accounts, [1, 2, 5])
    priced.set_tiers(MODEL, BATCHES, [p + 1 for p in PRICES])  # revenue not divisible by the shares
    sell(1, "odd")
    sell(32, "after")

    claimed = [c.claim(MODEL) for c in contributors]
    for amount, share in zip(claimed, shares, strict=True):
        assert released * share // sum(shares) - 1 <= amount <= released * share // sum(shares)
    assert released - len(accounts) - 1 < sum(claimed) <= released
    assert [c.claim(MODEL) for c in contributors] == [0, 0, 0]  # a retried claim pays nothing
    assert [priced.ledger.token_balance(a) for a in accounts] == claimed
    assert priced.ledger.token_balance(treasury) == fees_before + fees
    assert priced.ledger.token_balance(address_of(priced, ChainContract.MARKET)) == released - sum(claimed)


def test_gas_of_request_release_and_claim(priced: Market) -> None:
    buyer = consumer(priced, 1)
    contributor = priced.as_sender(priced.ledger.chain.unlocked_account(3))
    priced.set_dynamics(MODEL, *vars(DYNAMICS).values())
    priced.set_shares(MODEL, [contributor.sender], [1])
    web3 = priced.ledger.chain.web3
    events = priced.ledger.contract(ChainContract.MARKET).events

    def gas_of(event: Any) -> int:
        (log,) = event.get_logs(from_block=web3.eth.block_number)
        return web3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"]

    request = buyer.request(MODEL, 8, PRICES[1], now(priced) + DAY, key=keccak_id("job"))
    requested = gas_of(events.InferenceRequested())
    priced.release(request)
    released = gas_of(events.InferenceReleased())
    contributor.claim(MODEL)
    claimed = gas_of(events.RevenueClaimed())
    # FLAIToken makes every recipient its own delegate: each transfer also moves vote
    # checkpoints (the market's own included), about half of these figures.
    assert requested < 300_000 and released < 250_000 and claimed < 200_000, (requested, released, claimed)


# -- Uniswap ----------------------------------------------------------------------------------


def test_the_router_swaps_at_the_constant_product(market: Market) -> None:
    # The published Router02 finds pairs by the init-code hash of the published pair bytecode.
    pair_hash = keccak(hexstr=compiled(UNISWAP_PAIR).bytecode)
    assert pair_hash.hex() in compiled(ChainContract.UNISWAP_ROUTER).bytecode
    ledger = market.ledger
    ledger.mint_tokens(market.sender, 10**24)
    flai_in, eth_in = 50_000 * 10**18, 20 * 10**18
    assert market.seed_pool(flai_in, eth_in) == market.pool_reserves()
    reserves = market.pool_reserves()
    assert (reserves.flai, reserves.eth) == (flai_in, eth_in)
    assert market.seed_pool(1, 1) == reserves  # seeded already: a retry adds nothing

    token, weth, factory = (address_of(market, c) for c in (ChainContract.TOKEN, ChainContract.WETH,
                                                            ChainContract.UNISWAP_FACTORY))
    low, high = sorted([bytes.fromhex(token[2:]), bytes.fromhex(weth[2:])])
    create2 = keccak(b"\xff" + bytes.fromhex(factory[2:]) + keccak(low + high) + pair_hash)
    assert market.pair_address() == to_checksum_address(create2[12:])

    buyer, bought = market.as_sender(ledger.chain.unlocked_account(6)), 0
    for eth in (10**17, 3 * 10**18):
        before = market.pool_reserves()
        expected = eth * 997 * before.flai // (before.eth * 1_000 + eth * 997)
        assert market.amount_out(eth) == expected
        nonce = buyer.next_nonce()
        assert buyer.buy_flai(eth, expected, nonce=nonce) == expected
        assert buyer.buy_flai(eth, expected, nonce=nonce) == expected  # the retry buys nothing more
        assert market.pool_reserves() == PoolReserves(before.flai - expected, before.eth + eth)
        bought += expected
    assert ledger.token_balance(buyer.sender) == bought
    with pytest.raises(LedgerRevertError, match="INSUFFICIENT_OUTPUT_AMOUNT"):
        buyer.buy_flai(10**17, market.amount_out(10**17) + 1)


# -- flai market ------------------------------------------------------------------------------


@pytest.fixture
def stack_market(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Market]:
    """The market ``flai market`` uses: the stack's deployment on the embedded chain, kept in a
    data directory of its own."""
    monkeypatch.setenv("FLAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FLAI_CHAIN_URL", raising=False)
    monkeypatch.delenv("FLAI_CHAIN_PRIVATE_KEY", raising=False)
    get_settings.cache_clear()
    yield Market(stack_ledger())
    get_settings.cache_clear()


def test_cli_prices_seed_and_buy(stack_market: Market) -> None:
    market, runner = stack_market, CliRunner()
    unpriced = runner.invoke(app, ["market", "prices"])
    assert unpriced.exit_code == 1 and "no model has prices yet" in unpriced.output
    market.set_tiers(MODEL, BATCHES, PRICES)
    assert "none (not sold)" in " ".join(runner.invoke(app, ["market", "prices"]).output.split())
    market.set_row_budget(MODEL, 2_500)
    shown = runner.invoke(app, ["market", "prices", "--model", "heart-fedavg"])
    assert shown.exit_code == 0, shown.output
    assert "heart-fedavg 2,500" in " ".join(shown.output.split())
    rows = [line.split("│")[1:6] for line in shown.output.splitlines() if "x │" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["heart-fedavg", "1-1", flai_cell(PRICES[0]), "1.0000x", flai_cell(PRICES[0])],
        ["", "2-8", flai_cell(PRICES[1]), "1.0000x", flai_cell(PRICES[1])],
        ["", "9-32", flai_cell(PRICES[2]), "1.0000x", flai_cell(PRICES[2])],
    ]
    every = runner.invoke(app, ["market", "prices"])
    assert every.exit_code == 0 and f"0x{MODEL.hex()[:8]}" in every.output

    empty = runner.invoke(app, ["market", "buy", "--eth", "0.5"])
    assert empty.exit_code == 1 and "pool is empty" in empty.output
    market.ledger.mint_tokens(market.sender, 50_000 * 10**18)
    seeded = runner.invoke(app, ["market", "seed", "--flai", "50000", "--eth", "20"])
    assert seeded.exit_code == 0 and "pool seeded: 50000 FLAI / 20 ETH" in seeded.output, seeded.output
    assert market.pool_reserves() == PoolReserves(50_000 * 10**18, 20 * 10**18)

    quoted, held = market.amount_out(10**18 // 2), market.ledger.token_balance(market.sender)
    bought = runner.invoke(app, ["market", "buy", "--eth", "0.5"])
    assert bought.exit_code == 0, bought.output
    assert f"bought {flai_text(quoted)} FLAI for 0.5 ETH" in bought.output
    assert market.ledger.token_balance(market.sender) == held + quoted
    assert market.pool_reserves() == PoolReserves(50_000 * 10**18 - quoted, 20 * 10**18 + 10**18 // 2)
    for eth, problem in (("half", "'half' is not a number of ETH"), ("-1", "a positive amount of ETH")):
        refused = runner.invoke(app, ["market", "buy", "--eth", eth])
        assert refused.exit_code == 2 and problem in refused.output, refused.output
