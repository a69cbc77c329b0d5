"""The inference market and FLAI's Uniswap V2 pool from Python.

A :class:`Market` is a :class:`~contracts.ledger.Ledger` (same chain, deployment and sending
account) seen through ``InferenceMarket`` (pay-per-inference in FLAI: price tiers, an EIP-1559
style multiplier, escrow per request, revenue to a model's contributors by share) and the
published Uniswap V2 ``UniswapV2Factory``/``UniswapV2Router02``/``WETH9`` (a FLAI/WETH pool),
all deployed by ``Ledger.deploy`` with the rest of FLAI.

Every method that moves money may be called again after a lost receipt:

- :meth:`Market.request` escrows under ``requestId = keccak256(abi.encode(consumer, key))``;
  the contract answers a repeated request with the same id and takes nothing more.
- :meth:`Market.release` and :meth:`Market.refund` on a request that already ended return
  its state and send nothing; :meth:`Market.claim` pays only what accrued since.
- :meth:`Market.set_shares` with the same lists is a no-op (``already_recorded``).
- :meth:`Market.seed_pool` seeds only an empty pool; :meth:`Market.buy_flai` with the
  ``nonce`` of an attempt that was mined returns what that attempt bought.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NewType

from eth_abi import encode
from eth_utils import keccak
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD

from contracts.compiled import UNISWAP_PAIR, ChainContract, compiled
from contracts.errors import LedgerConflictError, LedgerValueError
from contracts.ledger import Ledger, tx_result
from contracts.records import Bytes32, RecordResult, TxResult, check_address, check_uint, to_bytes32

ONE = 10**18
"""The multiplier 1x (``InferenceMarket.ONE``)."""
ROUTER_DEADLINE_S = 3600
"""How long after the latest block a router call may still be mined."""

MARKET = ChainContract.MARKET
ROUTER = ChainContract.UNISWAP_ROUTER
PAIRS = ChainContract.UNISWAP_FACTORY  # the kind the factory's pairs count as, for typed errors


class RequestState(IntEnum):
    """``InferenceMarket.State``."""

    NONE = 0
    ESCROWED = 1
    RELEASED = 2
    REFUNDED = 3


RequestId = NewType("RequestId", bytes)
"""An inference request's 32-byte id: ``keccak256(abi.encode(consumer, key))``."""


@dataclass(frozen=True)
class Tier:
    """Batches of up to ``max_batch`` requests cost ``price`` times the multiplier."""

    max_batch: int
    price: int


@dataclass(frozen=True)
class Dynamics:
    """How a model's multiplier follows demand (``InferenceMarket.Dynamics``)."""

    target: int
    window_s: int
    min_multiplier: int
    max_multiplier: int


@dataclass(frozen=True)
class ModelPrices:
    """A model's tiers and its multiplier now (``dynamics`` None: fixed at 1x).

    ``window_start`` and ``used``: the current demand window and the requests made in it;
    ``row_budget``: the most rows one consumer may have predicted (0: not sold).
    """

    model: bytes
    tiers: tuple[Tier, ...]
    dynamics: Dynamics | None
    multiplier: int
    window_start: int
    used: int
    row_budget: int

    def price_now(self, tier: Tier) -> int:
        """What a request in ``tier`` pays now, as the contract rounds it."""
        return tier.price * self.multiplier // ONE


@dataclass(frozen=True)
class InferenceRequest:
    """One escrowed (or ended) request, as ``InferenceMarket.getRequest`` returns it."""

    request_id: bytes
    consumer: str
    model: bytes
    batch: int
    price: int
    deadline: int
    state: RequestState


@dataclass(frozen=True)
class PoolReserves:
    """The FLAI/WETH pair's reserves (zero before it is seeded)."""

    flai: int
    eth: int


def request_id_of(consumer: str, key: Bytes32) -> RequestId:
    """The id of ``consumer``'s request under ``key`` (``InferenceMarket.requestIdOf``).

    >>> request_id_of("0x" + "11" * 20, "00" * 32).hex()[:8]
    'f043c50f'
    """
    values = [check_address(consumer, "consumer"), to_bytes32(key, "key")]
    return RequestId(keccak(encode(["address", "bytes32"], values)))


class Market:
    """The inference market and the FLAI/WETH pool of one deployment, used from the Ledger's
    sender. The deployer holds every market role (``Role.PRICING``, ``Role.OPERATOR``,
    ``Role.SETTLER``: ``ledger.grant_role(ChainContract.MARKET, ...)`` grants them) and is
    the treasury that receives the fees."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._market = ledger.contract(MARKET)
        self._router = ledger.contract(ROUTER)
        self._factory = ledger.contract(ChainContract.UNISWAP_FACTORY)
        self._token = ledger.contract(ChainContract.TOKEN)
        self._weth = ledger.contract(ChainContract.WETH).address

    @property
    def sender(self) -> str:
        return self.ledger.sender

    def as_sender(self, sender: str) -> Market:
        """The same market, used from another account (unlocked, or added with a signer)."""
        return Market(self.ledger.as_sender(sender))

    # -- pricing ----------------------------------------------------------------------------

    def set_tiers(self, model: Bytes32, max_batches: Sequence[int], prices: Sequence[int]) -> TxResult:
        """Prices ``model``: a batch of up to ``max_batches[i]`` (ascending) costs ``prices[i]``
        FLAI base units times the multiplier (needs ``Role.PRICING``)."""
        call = self._market.functions.setTiers(
            to_bytes32(model, "model"),
            [check_uint(b, 32, f"max_batches[{i}]") for i, b in enumerate(max_batches)],
            [check_uint(p, 256, f"prices[{i}]") for i, p in enumerate(prices)],
        )
        return tx_result(self.ledger.send(MARKET, call))

    def set_dynamics(
        self, model: Bytes32, target: int, window_s: int, min_multiplier: int, max_multiplier: int
    ) -> TxResult:
        """Makes ``model``'s multiplier (``ONE`` = 1x) follow demand: ``target`` requests per
        window of ``window_s`` seconds, within the bounds (needs ``Role.PRICING``)."""
        call = self._market.functions.setDynamics(
            to_bytes32(model, "model"),
            check_uint(target, 64, "target"),
            check_uint(window_s, 32, "window_s"),
            check_uint(min_multiplier, 128, "min_multiplier"),
            check_uint(max_multiplier, 128, "max_multiplier"),
        )
        return tx_result(self.ledger.send(MARKET, call))

    def set_row_budget(self, model: Bytes32, rows: int) -> TxResult:
        """Lets one consumer have at most ``rows`` rows predicted by ``model`` over its requests
        not refunded: the extraction budget, the model owners' policy (needs ``Role.PRICING``;
        0 stops its sales)."""
        call = self._market.functions.setRowBudget(to_bytes32(model, "model"), check_uint(rows, 256, "rows"))
        return tx_result(self.ledger.send(MARKET, call))

    def quote(self, model: Bytes32, batch: int) -> int:
        """What a request for a batch of ``batch`` made now pays (tier price x multiplier)."""
        call = self._market.functions.quote(to_bytes32(model, "model"), check_uint(batch, 32, "batch"))
        return self.ledger.read(MARKET, call)

    def prices(self, model: Bytes32) -> ModelPrices:
        """``model``'s tiers, dynamics and multiplier now (no tiers: ``tiers`` is empty)."""
        model = to_bytes32(model, "model")
        functions = self._market.functions
        batches, prices = self.ledger.read(MARKET, functions.tiers(model))
        dynamics = Dynamics(*self.ledger.read(MARKET, functions.dynamics(model)))
        multiplier, window_start, used = self.ledger.read(MARKET, functions.demand(model))
        return ModelPrices(
            model,
            tuple(Tier(b, p) for b, p in zip(batches, prices, strict=True)),
            dynamics if dynamics.window_s else None,
            multiplier,
            window_start,
            used,
            self.ledger.read(MARKET, functions.rowBudget(model)),
        )

    def priced_models(self) -> list[bytes]:
        """Every model that was given tiers, in the order it first was."""
        events = self._market.events.TiersSet().get_logs(from_block=self.ledger.manifest.deployment_block)
        return list(dict.fromkeys(bytes(event["args"]["modelId"]) for event in events))

    # -- escrow -----------------------------------------------------------------------------

    def request(self, model: Bytes32, batch: int, max_price: int, deadline: int, *, key: Bytes32) -> RequestId:
        """Escrows the price of a batch of ``batch`` on ``model`` from the sender (approves
        ``max_price``, then requests) and returns the request's id.

        ``key`` names the request among the sender's (e.g. ``keccak_id`` of the inference
        job): the same request under the same key again escrows nothing more and returns the
        same id; under the same key for another model or batch raises
        :class:`~contracts.errors.LedgerConflictError`. A price now above ``max_price`` raises
        :class:`~contracts.errors.LedgerPriceTooHighError`; ``deadline`` is a block
        timestamp, after which the operator can no longer release and the consumer may refund.
        Rows past the model's row budget raise :class:`~contracts.errors.LedgerBudgetExceededError`.
        """
        model, key = to_bytes32(model, "model"), to_bytes32(key, "key")
        request_id = request_id_of(self.sender, key)
        made = self.get_request(request_id)
        if made.state is RequestState.NONE:
            self.ledger.approve(self._market.address, max_price)
        elif (made.model, made.batch) == (model, batch):
            return request_id
        # else the contract refuses the conflicting request and names it
        call = self._market.functions.request(
            model,
            check_uint(batch, 32, "batch"),
            check_uint(max_price, 256, "max_price"),
            check_uint(deadline, 64, "deadline"),
            key,
        )
        self.ledger.send(MARKET, call)
        return request_id

    def release(self, request: Bytes32) -> RequestState:
        """Pays an escrowed request: the fee to the treasury, the rest to its model's
        contributors (needs ``Role.OPERATOR``), and returns ``RELEASED``.

        A request that already ended returns its state (``RELEASED`` or ``REFUNDED``) and
        pays nothing. Past its deadline raises :class:`~contracts.errors.LedgerDeadlinePassedError`.
        """
        return self._end(request, self._market.functions.release)

    def refund(self, request: Bytes32) -> RequestState:
        """Returns an escrowed request's price to its consumer (the operator at any time,
        the consumer after the deadline) and returns ``REFUNDED``; a request that already
        ended returns its state and pays nothing."""
        return self._end(request, self._market.functions.refund)

    def request_state(self, request: Bytes32) -> RequestState:
        return self.get_request(request).state

    def get_request(self, request: Bytes32) -> InferenceRequest:
        """A request as recorded (state ``NONE`` and zeros if it was never made)."""
        request_id = to_bytes32(request, "request")
        made = self.ledger.read(MARKET, self._market.functions.getRequest(request_id))
        consumer, deadline, batch, state, model, price = made
        return InferenceRequest(request_id, consumer, bytes(model), batch, price, deadline, RequestState(state))

    def rows_served(self, model: Bytes32, consumer: str) -> int:
        """The rows ``consumer`` asked of ``model`` in requests not refunded: what its
        predictions could have revealed of the model so far."""
        call = self._market.functions.rowsRequested(to_bytes32(model, "model"),
                                                    check_address(consumer, "consumer"))
        return self.ledger.read(MARKET, call)

    # -- revenue ----------------------------------------------------------------------------

    def set_shares(self, model: Bytes32, accounts: Sequence[str], shares: Sequence[int]) -> RecordResult:
        """Sets ``model``'s contributors and their shares, once (needs ``Role.SETTLER``);
        revenue released before is distributed to them now. The same lists again return
        ``already_recorded=True``; other lists raise :class:`~contracts.errors.LedgerConflictError`."""
        call = self._market.functions.setShares(
            to_bytes32(model, "model"),
            [check_address(a, f"accounts[{i}]") for i, a in enumerate(accounts)],
            [check_uint(s, 256, f"shares[{i}]") for i, s in enumerate(shares)],
        )
        return self.ledger.record(MARKET, call, self._market.events.SharesSet())

    def claimable(self, model: Bytes32, account: str) -> int:
        """What ``account`` can claim of ``model``'s revenue now."""
        call = self._market.functions.claimable(to_bytes32(model, "model"), check_address(account, "account"))
        return self.ledger.read(MARKET, call)

    def claim(self, model: Bytes32) -> int:
        """Pays the sender what it accrued of ``model``'s revenue and returns the amount (0,
        and no transaction, when there is nothing to claim)."""
        model = to_bytes32(model, "model")
        if not self.claimable(model, self.sender):
            return 0
        receipt = self.ledger.send(MARKET, self._market.functions.claim(model))
        claimed = self._market.events.RevenueClaimed().process_receipt(receipt, errors=DISCARD)
        return sum(event["args"]["amount"] for event in claimed)

    def revenue(self, model: Bytes32) -> tuple[int, int, int]:
        """``model``'s total shares, revenue released to its contributors so far, and the part
        held until its shares are set."""
        call = self._market.functions.revenueOf(to_bytes32(model, "model"))
        total_shares, released, held = self.ledger.read(MARKET, call)
        return total_shares, released, held

    # -- Uniswap ----------------------------------------------------------------------------

    def pool_reserves(self) -> PoolReserves:
        """The FLAI/WETH pair's reserves; zeros while the pair does not exist."""
        pair = self._pair()
        if pair is None:
            return PoolReserves(0, 0)
        reserve0, reserve1, _ = self.ledger.read(PAIRS, pair.functions.getReserves())
        flai_first = int(self._token.address, 16) < int(self._weth, 16)  # the pair sorts its tokens
        return PoolReserves(reserve0, reserve1) if flai_first else PoolReserves(reserve1, reserve0)

    def seed_pool(self, flai_amount: int, eth_amount: int) -> PoolReserves:
        """Seeds the FLAI/WETH pool with ``flai_amount`` of the sender's FLAI and
        ``eth_amount`` wei (approve, then ``addLiquidityETH``; the sender gets the LP tokens)
        and returns its reserves. A pool that holds reserves already is left as it is: a
        retried seeding adds nothing."""
        reserves = self.pool_reserves()
        if reserves.flai or reserves.eth:
            return reserves
        self.ledger.approve(self._router.address, flai_amount)
        call = self._router.functions.addLiquidityETH(
            self._token.address,
            check_uint(flai_amount, 256, "flai_amount"),
            flai_amount,  # an empty pool takes the amounts as given
            check_uint(eth_amount, 256, "eth_amount"),
            self.sender,
            self._router_deadline(),
        )
        self.ledger.send(ROUTER, call, value=eth_amount)
        return self.pool_reserves()

    def pair_address(self) -> str | None:
        """The FLAI/WETH pair's address (the factory creates it on the first seeding), or None."""
        call = self._factory.functions.getPair(self._token.address, self._weth)
        address = self.ledger.read(ChainContract.UNISWAP_FACTORY, call)
        return None if int(address, 16) == 0 else address

    def amount_out(self, eth_in: int) -> int:
        """The FLAI a swap of ``eth_in`` wei buys now (``router.getAmountsOut``)."""
        call = self._router.functions.getAmountsOut(check_uint(eth_in, 256, "eth_in"), self._path())
        return self.ledger.read(ROUTER, call)[-1]

    def next_nonce(self) -> int:
        """The sender's next account nonce: pass it to :meth:`buy_flai` to make it retryable."""
        return self.ledger.chain.web3.eth.get_transaction_count(self.sender)

    def buy_flai(self, eth_amount: int, min_out: int, *, nonce: int | None = None) -> int:
        """Swaps ``eth_amount`` wei for FLAI through the router (``swapExactETHForTokens``,
        at least ``min_out``) and returns the FLAI bought.

        The transaction is sent with the account nonce ``nonce`` (default: the next one).
        Called again with the same ``nonce`` after a lost receipt, it buys nothing more: once
        that nonce is used it returns what the mined attempt bought, or raises
        :class:`~contracts.errors.LedgerValueError` if another transaction took the nonce.
        """
        if nonce is not None and self.next_nonce() > check_uint(nonce, 64, "nonce"):
            return self._bought_with(nonce)
        call = self._router.functions.swapExactETHForTokens(
            check_uint(min_out, 256, "min_out"), self._path(), self.sender, self._router_deadline()
        )
        receipt = self.ledger.send(ROUTER, call, value=eth_amount, nonce=nonce)
        return sum(
            event["args"]["value"]
            for event in self._token.events.Transfer().process_receipt(receipt, errors=DISCARD)
            if event["args"]["to"] == self.sender
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _pair(self) -> Contract | None:
        address = self.pair_address()
        if address is None:
            return None
        return self.ledger.chain.web3.eth.contract(address=address, abi=compiled(UNISWAP_PAIR).abi)

    def _path(self) -> list[str]:
        return [self._weth, self._token.address]

    def _router_deadline(self) -> int:
        return self.ledger.chain.web3.eth.get_block("latest")["timestamp"] + ROUTER_DEADLINE_S

    def _bought_with(self, nonce: int) -> int:
        """The FLAI bought by the sender's mined transaction of account nonce ``nonce``."""
        pair = self._pair()
        transfers = [] if pair is None else self._token.events.Transfer().get_logs(
            argument_filters={"from": pair.address, "to": self.sender},
            from_block=self.ledger.manifest.deployment_block,
        )
        eth = self.ledger.chain.web3.eth
        for transfer in transfers:
            if eth.get_transaction(transfer["transactionHash"])["nonce"] == nonce:
                return transfer["args"]["value"]
        raise LedgerValueError("nonce", nonce, "the nonce of a swap attempt; another transaction used it")

    def _end(self, request: Bytes32, action: Callable[[bytes], ContractFunction]) -> RequestState:
        request_id = to_bytes32(request, "request")
        state = self.request_state(request_id)
        if state in (RequestState.RELEASED, RequestState.REFUNDED):
            return state
        try:
            self.ledger.send(MARKET, action(request_id))
        except LedgerConflictError as error:  # ended in between, by another sender or an earlier attempt
            if error.error != "InferenceMarketRequestEnded":
                raise
        return self.request_state(request_id)
