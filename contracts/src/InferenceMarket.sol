// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/**
 * @title InferenceMarket
 * @notice Pay-per-inference in FLAI for trained models (`modelId`: the training task's id).
 *
 * Price: a fixed price per batch-size tier ({setTiers}), times a per-model multiplier
 * (1e18 = 1x) that follows demand like EIP-1559's base fee ({setDynamics}). Demand is counted
 * in requests per window; once a window ends, with `used` requests against `target`,
 *
 *     multiplier' = clamp(multiplier * (1 + (min(used, 2 * target) - target) / target / 8), min, max)
 *
 * (integer arithmetic, floored as written: `m + m * (u - t) / t / 8` or `m - m * (t - u) / t / 8`).
 * As in EIP-1559, demand is capped at twice the target, so one window moves the price by at
 * most 1/8 either way. Windows that pass without a request each apply one quiet step (x 7/8),
 * in a loop that stops once the multiplier no longer moves (at `min`); `max` is at most
 * {MAX_MULTIPLIER_RANGE} times `min`, which bounds the loop to about 70 steps however long
 * the model sat unused.
 *
 * Escrow: {request} pulls the quoted price from the consumer and holds it; the operator (the
 * inference flow's coordinator) then either {release}s it once the inference is delivered
 * (before the deadline), paying `feeBps` of it to the treasury and the rest to the model's
 * contributors, or {refund}s it (failed inference); after the deadline the consumer may
 * refund it too. A request ends exactly once.
 *
 * Revenue: contributors are paid in proportion to their shares ({setShares}, once per
 * model), through a revenue-per-share accumulator: releasing costs the same whatever the
 * number of contributors, and each contributor {claim}s its own. Revenue released before the
 * shares are set is held and distributed when they are. Rounding leaves less than one base
 * unit per contributor, plus `totalShares / 1e18`, unclaimable (it stays in the contract).
 *
 * Extraction budget: each answer reveals a little of the model, so a consumer may have at
 * most {rowBudget} rows predicted by a model, over its requests not refunded
 * ({rowsRequested}). The budget is the model's owners' policy, set on chain with its prices
 * ({setRowBudget}); a model without one is not sold.
 *
 * Roles: `PRICING_ROLE` sets tiers, dynamics and row budgets (the deployer until governance
 * exists; a model's SubDAO timelock can be granted it), `OPERATOR_ROLE` releases and refunds,
 * `SETTLER_ROLE` sets the shares.
 */
contract InferenceMarket is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to set price tiers and dynamics.
    bytes32 public constant PRICING_ROLE = keccak256("PRICING_ROLE");
    /// @notice Role allowed to release and refund escrowed requests.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Role allowed to set a model's contributor shares.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    /// @notice The multiplier 1x.
    uint256 public constant ONE = 1e18;
    /// @notice EIP-1559's bound on the change of one window: 1/8.
    uint256 public constant MAX_CHANGE_DENOMINATOR = 8;
    /// @notice The most `maxMultiplier / minMultiplier` may be; bounds the quiet-window loop.
    uint256 public constant MAX_MULTIPLIER_RANGE = 10_000;
    /// @notice The most tiers a model may have; bounds the tier lookup.
    uint256 public constant MAX_TIERS = 16;
    uint256 private constant BPS = 10_000;
    uint256 private constant REVENUE_SCALE = 1e18;

    enum State {
        None,
        Escrowed,
        Released,
        Refunded
    }

    struct Dynamics {
        uint64 target;
        uint32 windowSeconds;
        uint128 minMultiplier;
        uint128 maxMultiplier;
    }

    struct Demand {
        uint128 multiplier;
        uint64 windowStart;
        uint64 used;
    }

    struct Request {
        address consumer;
        uint64 deadline;
        uint32 batch;
        State state;
        bytes32 modelId;
        uint256 price;
    }

    struct Revenue {
        bytes32 sharesDigest;
        uint256 totalShares;
        uint256 perShare; // revenue per share, times REVENUE_SCALE
        uint256 carry; // remainder of the last division into perShare, times REVENUE_SCALE
        uint256 held; // released before the shares were set
        uint256 released;
    }

    /// @notice The token prices are paid in (FLAI).
    IERC20 public immutable token;
    /// @notice Receives the protocol fee.
    address public immutable treasury;
    /// @notice The protocol fee, in basis points of each released price.
    uint256 public immutable feeBps;

    mapping(bytes32 modelId => uint32[]) private _tierBatches;
    mapping(bytes32 modelId => uint256[]) private _tierPrices;
    mapping(bytes32 modelId => Dynamics) private _dynamics;
    mapping(bytes32 modelId => Demand) private _demand;
    mapping(bytes32 requestId => Request) private _requests;
    mapping(bytes32 modelId => Revenue) private _revenue;
    mapping(bytes32 modelId => mapping(address account => uint256)) private _shares;
    mapping(bytes32 modelId => mapping(address account => uint256)) private _claimed;
    /// @notice Rows `consumer` asked of model `modelId` in requests not refunded: how much of
    /// the model its answers may have revealed ({rowBudget} bounds it).
    mapping(bytes32 modelId => mapping(address consumer => uint256)) public rowsRequested;
    /// @notice The most rows one consumer may have predicted by model `modelId` (0: not sold).
    mapping(bytes32 modelId => uint256) public rowBudget;

    /// @notice Model `modelId` is priced `price[i]` for batches up to `maxBatch[i]`.
    event TiersSet(bytes32 indexed modelId, uint32[] maxBatch, uint256[] price);
    /// @notice Model `modelId`'s multiplier follows demand against `target` requests per window.
    event DynamicsSet(
        bytes32 indexed modelId,
        uint64 target,
        uint32 windowSeconds,
        uint128 minMultiplier,
        uint128 maxMultiplier
    );
    /// @notice One consumer may have at most `rows` rows predicted by model `modelId`.
    event RowBudgetSet(bytes32 indexed modelId, uint256 rows);
    /// @notice Model `modelId`'s multiplier is `multiplier` for the window from `windowStart`.
    event MultiplierUpdated(bytes32 indexed modelId, uint256 multiplier, uint64 windowStart);
    /// @notice `consumer` escrowed `price` for a batch of `batch` on model `modelId`.
    event InferenceRequested(
        bytes32 indexed requestId,
        bytes32 indexed modelId,
        address indexed consumer,
        uint32 batch,
        uint256 price,
        uint64 deadline
    );
    /// @notice Request `requestId` paid `fee` to the treasury and `revenue` to model `modelId`'s contributors.
    event InferenceReleased(bytes32 indexed requestId, bytes32 indexed modelId, uint256 fee, uint256 revenue);
    /// @notice Request `requestId`'s `price` went back to `consumer`.
    event InferenceRefunded(bytes32 indexed requestId, address indexed consumer, uint256 price);
    /// @notice Model `modelId`'s contributors and shares; `distributed` of held revenue went to them.
    event SharesSet(bytes32 indexed modelId, address[] accounts, uint256[] shares, uint256 distributed);
    /// @notice `account` claimed `amount` of model `modelId`'s revenue.
    event RevenueClaimed(bytes32 indexed modelId, address indexed account, uint256 amount);

    /// @notice The admin given is the zero address.
    error InferenceMarketInvalidAdmin(address admin);
    /// @notice The token given is the zero address.
    error InferenceMarketInvalidToken(address token);
    /// @notice The treasury given is the zero address.
    error InferenceMarketInvalidTreasury(address treasury);
    /// @notice The fee exceeds 10000 basis points.
    error InferenceMarketInvalidFee(uint256 feeBps);
    /// @notice The tiers are empty, too many, of unequal lengths, not ascending from 1, or free.
    error InferenceMarketInvalidTiers(bytes32 modelId);
    /// @notice The target or window is zero, or the bounds are zero, reversed or too far apart.
    error InferenceMarketInvalidDynamics(bytes32 modelId);
    /// @notice Model `modelId` has no tiers.
    error InferenceMarketUnknownModel(bytes32 modelId);
    /// @notice Batch `batch` is zero or above model `modelId`'s largest tier `maxBatch`.
    error InferenceMarketInvalidBatch(bytes32 modelId, uint32 batch, uint32 maxBatch);
    /// @notice The price now, `price`, is above the consumer's `maxPrice`.
    error InferenceMarketPriceTooHigh(bytes32 modelId, uint256 price, uint256 maxPrice);
    /// @notice `consumer`'s `requested` rows on model `modelId` would pass its row budget `budget`.
    error InferenceMarketRowBudgetExceeded(bytes32 modelId, address consumer, uint256 requested, uint256 budget);
    /// @notice The deadline `deadline` is not after the block's timestamp `now`.
    error InferenceMarketInvalidDeadline(uint64 deadline, uint256 now);
    /// @notice The consumer's request under this key is for another model or batch.
    error InferenceMarketRequestConflict(bytes32 requestId, bytes32 modelId, uint32 batch);
    /// @notice No request `requestId` was made.
    error InferenceMarketUnknownRequest(bytes32 requestId);
    /// @notice Request `requestId` already ended (`state`: 2 released, 3 refunded).
    error InferenceMarketRequestEnded(bytes32 requestId, State state);
    /// @notice Request `requestId`'s deadline passed: it can only be refunded.
    error InferenceMarketDeadlinePassed(bytes32 requestId, uint64 deadline);
    /// @notice The consumer may refund request `requestId` only after `refundableAfter`.
    error InferenceMarketRefundTooEarly(bytes32 requestId, uint64 refundableAfter);
    /// @notice `caller` is neither the operator nor the request's consumer.
    error InferenceMarketUnauthorizedRefund(bytes32 requestId, address caller);
    /// @notice The shares are empty, of unequal lengths, or entry `index` is zero or repeated.
    error InferenceMarketInvalidShares(bytes32 modelId, uint256 index);
    /// @notice Model `modelId`'s shares were set to other ones (digest `sharesDigest`).
    error InferenceMarketSharesConflict(bytes32 modelId, bytes32 sharesDigest);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE`, `PRICING_ROLE`, `OPERATOR_ROLE` and `SETTLER_ROLE`.
     * @param paymentToken The token prices are paid in.
     * @param feeTreasury Account the protocol fee goes to.
     * @param protocolFeeBps The protocol fee in basis points.
     *
     * Requirements:
     *
     * - none of `admin`, `paymentToken`, `feeTreasury` is the zero address.
     * - `protocolFeeBps` is at most 10000.
     */
    constructor(address admin, IERC20 paymentToken, address feeTreasury, uint256 protocolFeeBps) {
        if (admin == address(0)) {
            revert InferenceMarketInvalidAdmin(admin);
        }
        if (address(paymentToken) == address(0)) {
            revert InferenceMarketInvalidToken(address(paymentToken));
        }
        if (feeTreasury == address(0)) {
            revert InferenceMarketInvalidTreasury(feeTreasury);
        }
        if (protocolFeeBps > BPS) {
            revert InferenceMarketInvalidFee(protocolFeeBps);
        }
        token = paymentToken;
        treasury = feeTreasury;
        feeBps = protocolFeeBps;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PRICING_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
        _grantRole(SETTLER_ROLE, admin);
    }

    // -- pricing ---------------------------------------------------------------------------

    /**
     * @notice Prices model `modelId`: a batch of `b` requests costs `price[i]` for the first
     * `i` with `b <= maxBatch[i]`. Replaces the model's tiers.
     *
     * Emits a {TiersSet} event.
     *
     * Requirements:
     *
     * - the caller has `PRICING_ROLE`.
     * - 1 to {MAX_TIERS} tiers, `maxBatch` strictly ascending from at least 1, every price non-zero.
     */
    function setTiers(
        bytes32 modelId,
        uint32[] calldata maxBatch,
        uint256[] calldata price
    ) external onlyRole(PRICING_ROLE) {
        uint256 count = maxBatch.length;
        if (count == 0 || count > MAX_TIERS || price.length != count) {
            revert InferenceMarketInvalidTiers(modelId);
        }
        uint32 previous = 0;
        for (uint256 i = 0; i < count; ++i) {
            if (maxBatch[i] <= previous || price[i] == 0) {
                revert InferenceMarketInvalidTiers(modelId);
            }
            previous = maxBatch[i];
        }
        _tierBatches[modelId] = maxBatch;
        _tierPrices[modelId] = price;
        emit TiersSet(modelId, maxBatch, price);
    }

    /**
     * @notice Makes model `modelId`'s multiplier follow demand: `target` requests per window
     * of `windowSeconds`, the multiplier kept within `[minMultiplier, maxMultiplier]` (1e18 = 1x).
     * A model's first dynamics start at 1x (clamped) with a window starting now; new dynamics
     * for a model that has some first bring its multiplier up to date under the old ones,
     * then clamp it to the new bounds.
     *
     * Emits a {DynamicsSet} and a {MultiplierUpdated} event.
     *
     * Requirements:
     *
     * - the caller has `PRICING_ROLE`.
     * - `target` and `windowSeconds` are not zero.
     * - `0 < minMultiplier <= maxMultiplier <= minMultiplier * MAX_MULTIPLIER_RANGE`.
     */
    function setDynamics(
        bytes32 modelId,
        uint64 target,
        uint32 windowSeconds,
        uint128 minMultiplier,
        uint128 maxMultiplier
    ) external onlyRole(PRICING_ROLE) {
        if (
            target == 0 ||
            windowSeconds == 0 ||
            minMultiplier == 0 ||
            maxMultiplier < minMultiplier ||
            maxMultiplier > uint256(minMultiplier) * MAX_MULTIPLIER_RANGE
        ) {
            revert InferenceMarketInvalidDynamics(modelId);
        }
        Demand memory current = _currentDemand(modelId);
        Dynamics memory updated = Dynamics(target, windowSeconds, minMultiplier, maxMultiplier);
        current.multiplier = uint128(_clamp(current.multiplier, updated));
        _dynamics[modelId] = updated;
        _demand[modelId] = current;
        emit DynamicsSet(modelId, target, windowSeconds, minMultiplier, maxMultiplier);
        emit MultiplierUpdated(modelId, current.multiplier, current.windowStart);
    }

    /**
     * @notice Lets one consumer have at most `rows` rows predicted by model `modelId`, over
     * all its requests not refunded. Lowering it below what a consumer has had refuses that
     * consumer's further requests; 0 stops the model's sales.
     *
     * Emits a {RowBudgetSet} event.
     *
     * Requirements:
     *
     * - the caller has `PRICING_ROLE`.
     */
    function setRowBudget(bytes32 modelId, uint256 rows) external onlyRole(PRICING_ROLE) {
        rowBudget[modelId] = rows;
        emit RowBudgetSet(modelId, rows);
    }

    // -- escrow ----------------------------------------------------------------------------

    /**
     * @notice Escrows the price of a batch of `batch` on model `modelId` ({quote}, now) from
     * the caller, under the request id {requestIdOf}`(caller, key)`. Making the same request
     * (same model and batch) under the same key again pays nothing and returns the same id,
     * so a consumer may retry a request whose receipt it lost.
     *
     * Emits an {InferenceRequested} event, and a {MultiplierUpdated} event when a window ended
     * since the model's last request; nothing for a repeated request.
     *
     * Requirements:
     *
     * - the caller has approved this contract for at least the price.
     * - the price is at most `maxPrice`; `deadline` is after the block's timestamp.
     * - the caller's request under `key`, if any, is for the same model and batch.
     * - the caller's rows on the model, with `batch`, stay within the model's {rowBudget}.
     */
    function request(
        bytes32 modelId,
        uint32 batch,
        uint256 maxPrice,
        uint64 deadline,
        bytes32 key
    ) external returns (bytes32 requestId) {
        address consumer = _msgSender();
        requestId = requestIdOf(consumer, key);
        Request storage made = _requests[requestId];
        if (made.state != State.None) {
            if (made.modelId == modelId && made.batch == batch) {
                return requestId;
            }
            revert InferenceMarketRequestConflict(requestId, made.modelId, made.batch);
        }
        if (deadline <= block.timestamp) {
            revert InferenceMarketInvalidDeadline(deadline, block.timestamp);
        }
        uint256 rows = rowsRequested[modelId][consumer] + batch;
        if (rows > rowBudget[modelId]) {
            revert InferenceMarketRowBudgetExceeded(modelId, consumer, rows, rowBudget[modelId]);
        }
        uint256 tier = tierPrice(modelId, batch);
        uint256 price = _recordDemand(modelId, tier);
        if (price > maxPrice) {
            revert InferenceMarketPriceTooHigh(modelId, price, maxPrice);
        }
        _requests[requestId] = Request(consumer, deadline, batch, State.Escrowed, modelId, price);
        rowsRequested[modelId][consumer] = rows;
        emit InferenceRequested(requestId, modelId, consumer, batch, price, deadline);
        token.safeTransferFrom(consumer, address(this), price);
    }

    /**
     * @notice Pays escrowed request `requestId`: `feeBps` of its price to the treasury, the
     * rest to its model's contributors (held until the model's shares are set).
     *
     * Emits an {InferenceReleased} event.
     *
     * Requirements:
     *
     * - the caller has `OPERATOR_ROLE`.
     * - the request is escrowed (neither released nor refunded) and its deadline has not passed.
     */
    function release(bytes32 requestId) external onlyRole(OPERATOR_ROLE) {
        Request storage escrowed = _escrowed(requestId);
        if (block.timestamp > escrowed.deadline) {
            revert InferenceMarketDeadlinePassed(requestId, escrowed.deadline);
        }
        escrowed.state = State.Released;
        uint256 price = escrowed.price;
        uint256 fee = (price * feeBps) / BPS;
        bytes32 modelId = escrowed.modelId;
        Revenue storage revenue = _revenue[modelId];
        revenue.released += price - fee;
        if (revenue.totalShares == 0) {
            revenue.held += price - fee;
        } else {
            _distribute(revenue, price - fee);
        }
        emit InferenceReleased(requestId, modelId, fee, price - fee);
        if (fee > 0) {
            token.safeTransfer(treasury, fee);
        }
    }

    /**
     * @notice Returns escrowed request `requestId`'s price to its consumer: by the operator at
     * any time (the inference failed), by the consumer once the deadline has passed.
     *
     * Emits an {InferenceRefunded} event.
     *
     * Requirements:
     *
     * - the request is escrowed (neither released nor refunded).
     * - the caller has `OPERATOR_ROLE`, or is the consumer and the deadline has passed.
     */
    function refund(bytes32 requestId) external {
        Request storage escrowed = _escrowed(requestId);
        address caller = _msgSender();
        if (!hasRole(OPERATOR_ROLE, caller)) {
            if (caller != escrowed.consumer) {
                revert InferenceMarketUnauthorizedRefund(requestId, caller);
            }
            if (block.timestamp <= escrowed.deadline) {
                revert InferenceMarketRefundTooEarly(requestId, escrowed.deadline);
            }
        }
        escrowed.state = State.Refunded;
        rowsRequested[escrowed.modelId][escrowed.consumer] -= escrowed.batch;
        emit InferenceRefunded(requestId, escrowed.consumer, escrowed.price);
        token.safeTransfer(escrowed.consumer, escrowed.price);
    }

    // -- revenue ---------------------------------------------------------------------------

    /**
     * @notice Sets model `modelId`'s contributors and their shares, once; revenue held
     * until now is distributed to them. Setting the same lists again does nothing.
     *
     * Emits a {SharesSet} event, unless the model has exactly these shares already.
     *
     * Requirements:
     *
     * - the caller has `SETTLER_ROLE`.
     * - the lists are non-empty and of equal length; no account is zero or repeated; no share is zero.
     * - the model has no shares yet, or exactly these.
     */
    function setShares(
        bytes32 modelId,
        address[] calldata accounts,
        uint256[] calldata shares
    ) external onlyRole(SETTLER_ROLE) {
        Revenue storage revenue = _revenue[modelId];
        bytes32 digest = keccak256(abi.encode(accounts, shares));
        if (revenue.sharesDigest != bytes32(0)) {
            if (revenue.sharesDigest == digest) {
                return;
            }
            revert InferenceMarketSharesConflict(modelId, revenue.sharesDigest);
        }
        if (accounts.length == 0 || shares.length != accounts.length) {
            revert InferenceMarketInvalidShares(modelId, 0);
        }
        mapping(address => uint256) storage sharesOf = _shares[modelId];
        uint256 total = 0;
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (accounts[i] == address(0) || shares[i] == 0 || sharesOf[accounts[i]] != 0) {
                revert InferenceMarketInvalidShares(modelId, i);
            }
            sharesOf[accounts[i]] = shares[i];
            total += shares[i];
        }
        revenue.sharesDigest = digest;
        revenue.totalShares = total;
        uint256 held = revenue.held;
        revenue.held = 0;
        if (held > 0) {
            _distribute(revenue, held);
        }
        emit SharesSet(modelId, accounts, shares, held);
    }

    /**
     * @notice Pays the caller what it has accrued of model `modelId`'s revenue and returns
     * the amount; nothing (and no event) when it has nothing to claim.
     *
     * Emits a {RevenueClaimed} event when the amount is not zero.
     */
    function claim(bytes32 modelId) external returns (uint256 amount) {
        address account = _msgSender();
        amount = claimable(modelId, account);
        if (amount == 0) {
            return 0;
        }
        _claimed[modelId][account] += amount;
        emit RevenueClaimed(modelId, account, amount);
        token.safeTransfer(account, amount);
    }

    // -- views -----------------------------------------------------------------------------

    /// @notice The id of `consumer`'s request under `key`.
    function requestIdOf(address consumer, bytes32 key) public pure returns (bytes32) {
        return keccak256(abi.encode(consumer, key));
    }

    /// @notice Model `modelId`'s tiers (empty if it has none).
    function tiers(bytes32 modelId) external view returns (uint32[] memory maxBatch, uint256[] memory price) {
        return (_tierBatches[modelId], _tierPrices[modelId]);
    }

    /**
     * @notice The tier price of a batch of `batch` on model `modelId`, before the multiplier.
     *
     * Requirements:
     *
     * - the model has tiers; `batch` is between 1 and its largest tier.
     */
    function tierPrice(bytes32 modelId, uint32 batch) public view returns (uint256) {
        uint32[] storage batches = _tierBatches[modelId];
        uint256 count = batches.length;
        if (count == 0) {
            revert InferenceMarketUnknownModel(modelId);
        }
        for (uint256 i = 0; i < count && batch > 0; ++i) {
            if (batch <= batches[i]) {
                return _tierPrices[modelId][i];
            }
        }
        revert InferenceMarketInvalidBatch(modelId, batch, batches[count - 1]);
    }

    /// @notice Model `modelId`'s dynamics (all zero if it has none: its multiplier stays 1x).
    function dynamics(bytes32 modelId) external view returns (Dynamics memory) {
        return _dynamics[modelId];
    }

    /// @notice Model `modelId`'s demand as of now: the multiplier, its window's start and the requests in it.
    function demand(bytes32 modelId) external view returns (Demand memory) {
        return _currentDemand(modelId);
    }

    /// @notice Model `modelId`'s multiplier now (1e18 = 1x).
    function multiplier(bytes32 modelId) external view returns (uint256) {
        return _currentDemand(modelId).multiplier;
    }

    /// @notice What a request for a batch of `batch` on model `modelId` made now pays: tier price x multiplier.
    function quote(bytes32 modelId, uint32 batch) external view returns (uint256) {
        return (tierPrice(modelId, batch) * _currentDemand(modelId).multiplier) / ONE;
    }

    /// @notice Request `requestId` (state `None` and zeros if it was never made).
    function getRequest(bytes32 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @notice Model `modelId`'s total shares, revenue released to contributors so far, and the part held until shares are set.
    function revenueOf(
        bytes32 modelId
    ) external view returns (uint256 totalShares, uint256 released, uint256 held) {
        Revenue storage revenue = _revenue[modelId];
        return (revenue.totalShares, revenue.released, revenue.held);
    }

    /// @notice `account`'s share of model `modelId`'s revenue (0 if none).
    function shareOf(bytes32 modelId, address account) external view returns (uint256) {
        return _shares[modelId][account];
    }

    /// @notice What `account` has claimed of model `modelId`'s revenue so far.
    function claimed(bytes32 modelId, address account) external view returns (uint256) {
        return _claimed[modelId][account];
    }

    /// @notice What `account` can claim of model `modelId`'s revenue now.
    function claimable(bytes32 modelId, address account) public view returns (uint256) {
        uint256 earned = (_shares[modelId][account] * _revenue[modelId].perShare) / REVENUE_SCALE;
        return earned - _claimed[modelId][account];
    }

    // -- internals -------------------------------------------------------------------------

    /// @dev The price of a request at tier price `tier` now, counting the request in the model's window.
    function _recordDemand(bytes32 modelId, uint256 tier) private returns (uint256 price) {
        if (_dynamics[modelId].windowSeconds == 0) {
            return tier;
        }
        Demand memory stored = _demand[modelId];
        Demand memory current = _currentDemand(modelId);
        if (current.windowStart != stored.windowStart) {
            emit MultiplierUpdated(modelId, current.multiplier, current.windowStart);
        }
        current.used += 1;
        _demand[modelId] = current;
        return (tier * current.multiplier) / ONE;
    }

    /// @dev Model `modelId`'s demand with every window that ended by now applied (1x if it has no dynamics).
    function _currentDemand(bytes32 modelId) private view returns (Demand memory current) {
        Dynamics memory model = _dynamics[modelId];
        if (model.windowSeconds == 0) {
            return Demand(uint128(ONE), uint64(block.timestamp), 0);
        }
        current = _demand[modelId];
        uint256 ended = (block.timestamp - current.windowStart) / model.windowSeconds;
        if (ended == 0) {
            return current;
        }
        uint256 value = _step(current.multiplier, current.used, model);
        for (uint256 quiet = 1; quiet < ended; ++quiet) {
            uint256 next = _step(value, 0, model);
            if (next == value) {
                break; // at the floor: every further quiet window leaves it there
            }
            value = next;
        }
        current.multiplier = uint128(value);
        current.windowStart += uint64(ended * model.windowSeconds);
        current.used = 0;
    }

    /// @dev The multiplier after a window with `used` requests: EIP-1559's update, clamped.
    function _step(uint256 value, uint256 used, Dynamics memory model) private pure returns (uint256) {
        uint256 target = model.target;
        uint256 counted = Math.min(used, 2 * target);
        uint256 next = counted >= target
            ? value + (value * (counted - target)) / target / MAX_CHANGE_DENOMINATOR
            : value - (value * (target - counted)) / target / MAX_CHANGE_DENOMINATOR;
        return _clamp(next, model);
    }

    function _clamp(uint256 value, Dynamics memory model) private pure returns (uint256) {
        return Math.min(Math.max(value, model.minMultiplier), model.maxMultiplier);
    }

    function _distribute(Revenue storage revenue, uint256 amount) private {
        uint256 scaled = amount * REVENUE_SCALE + revenue.carry;
        revenue.perShare += scaled / revenue.totalShares;
        revenue.carry = scaled % revenue.totalShares;
    }

    function _escrowed(bytes32 requestId) private view returns (Request storage escrowed) {
        escrowed = _requests[requestId];
        if (escrowed.state == State.None) {
            revert InferenceMarketUnknownRequest(requestId);
        }
        if (escrowed.state != State.Escrowed) {
            revert InferenceMarketRequestEnded(requestId, escrowed.state);
        }
    }
}
