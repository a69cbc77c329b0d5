// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/**
 * @title ProviderStaking
 * @notice Data providers bond FLAI to be selected for paid tasks; misbehaviour is slashed.
 *
 * A provider's stake is either bonded (it counts for selection: {isEligible}) or unbonding
 * (it no longer counts, and can be withdrawn once {unbondingDelay} has passed since the
 * provider's latest unbonding request). The delay is longer than an epoch plus the dispute
 * window, so that stake cannot leave before the misbehaviour of the last epoch it served in
 * could be found and slashed: slashing reaches unbonding stake too. A new request restarts
 * the delay for all of the provider's unbonding stake.
 *
 * Roles: `SLASHER_ROLE` slashes, with a reason recorded in the {Slashed} event; the tokens go
 * to {treasury}. It is held by the deployer at first; the admin grants it to a DAO timelock
 * and revokes it from the deployer once governance exists.
 */
contract ProviderStaking is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to slash providers.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    struct Stake {
        uint256 bonded;
        uint256 unbonding;
        uint256 withdrawableAt;
    }

    /// @notice The token staked (FLAI).
    IERC20 public immutable token;
    /// @notice Where slashed tokens go.
    address public immutable treasury;
    /// @notice Length of a reward epoch, in seconds.
    uint256 public immutable epochLength;
    /// @notice Time after an epoch during which its settlement can be disputed, in seconds.
    uint256 public immutable disputeWindow;
    /// @notice Seconds between a provider's latest unbonding request and its withdrawal.
    uint256 public immutable unbondingDelay;

    mapping(address provider => Stake) private _stakes;

    /// @notice `provider` bonded `amount` more; its bonded stake is now `bonded`.
    event Staked(address indexed provider, uint256 amount, uint256 bonded);
    /// @notice `provider` started unbonding `amount`; `unbonding` in all can be withdrawn from `withdrawableAt`.
    event UnbondRequested(address indexed provider, uint256 amount, uint256 unbonding, uint256 withdrawableAt);
    /// @notice `provider` withdrew its unbonded `amount`.
    event Withdrawn(address indexed provider, uint256 amount);
    /// @notice `amount` of `provider`'s stake went to the treasury, for `reason`.
    event Slashed(address indexed provider, uint256 amount, string reason);

    /// @notice The admin given is the zero address.
    error ProviderStakingInvalidAdmin(address admin);
    /// @notice The token given is the zero address.
    error ProviderStakingInvalidToken(address token);
    /// @notice The treasury given is the zero address.
    error ProviderStakingInvalidTreasury(address treasury);
    /// @notice `unbondingDelay` must exceed `epochLength + disputeWindow`, and an epoch must last.
    error ProviderStakingInvalidDelay(uint256 unbondingDelay, uint256 epochLength, uint256 disputeWindow);
    /// @notice Staking, unbonding or slashing nothing is refused.
    error ProviderStakingZeroAmount();
    /// @notice `provider` has `available` where `requested` was needed.
    error ProviderStakingInsufficientStake(address provider, uint256 requested, uint256 available);
    /// @notice `provider` has nothing unbonding.
    error ProviderStakingNothingUnbonding(address provider);
    /// @notice `provider`'s unbonding stake can be withdrawn from `withdrawableAt`, not before.
    error ProviderStakingStillUnbonding(address provider, uint256 withdrawableAt);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE` and `SLASHER_ROLE`.
     * @param stakeToken The token staked.
     * @param slashTreasury Where slashed tokens go.
     * @param epochSeconds Length of a reward epoch.
     * @param disputeSeconds Time after an epoch during which its settlement can be disputed.
     * @param unbondingSeconds Delay between an unbonding request and the withdrawal.
     *
     * Requirements:
     *
     * - none of `admin`, `stakeToken`, `slashTreasury` is the zero address.
     * - `epochSeconds` is not zero and `unbondingSeconds > epochSeconds + disputeSeconds`.
     */
    constructor(
        address admin,
        IERC20 stakeToken,
        address slashTreasury,
        uint256 epochSeconds,
        uint256 disputeSeconds,
        uint256 unbondingSeconds
    ) {
        if (admin == address(0)) {
            revert ProviderStakingInvalidAdmin(admin);
        }
        if (address(stakeToken) == address(0)) {
            revert ProviderStakingInvalidToken(address(stakeToken));
        }
        if (slashTreasury == address(0)) {
            revert ProviderStakingInvalidTreasury(slashTreasury);
        }
        if (epochSeconds == 0 || unbondingSeconds <= epochSeconds + disputeSeconds) {
            revert ProviderStakingInvalidDelay(unbondingSeconds, epochSeconds, disputeSeconds);
        }
        token = stakeToken;
        treasury = slashTreasury;
        epochLength = epochSeconds;
        disputeWindow = disputeSeconds;
        unbondingDelay = unbondingSeconds;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SLASHER_ROLE, admin);
    }

    /**
     * @notice Bonds `amount` tokens of the caller's.
     *
     * Emits a {Staked} event.
     *
     * Requirements:
     *
     * - `amount` is not zero.
     * - the caller has approved this contract for at least `amount`.
     */
    function stake(uint256 amount) external {
        if (amount == 0) {
            revert ProviderStakingZeroAmount();
        }
        Stake storage own = _stakes[_msgSender()];
        own.bonded += amount;
        emit Staked(_msgSender(), amount, own.bonded);
        token.safeTransferFrom(_msgSender(), address(this), amount);
    }

    /**
     * @notice Moves `amount` of the caller's bonded stake to unbonding, and restarts the
     * delay of all its unbonding stake.
     *
     * Emits an {UnbondRequested} event.
     *
     * Requirements:
     *
     * - `amount` is not zero and at most the caller's bonded stake.
     */
    function requestUnbond(uint256 amount) external {
        if (amount == 0) {
            revert ProviderStakingZeroAmount();
        }
        Stake storage own = _stakes[_msgSender()];
        if (amount > own.bonded) {
            revert ProviderStakingInsufficientStake(_msgSender(), amount, own.bonded);
        }
        own.bonded -= amount;
        own.unbonding += amount;
        own.withdrawableAt = block.timestamp + unbondingDelay;
        emit UnbondRequested(_msgSender(), amount, own.unbonding, own.withdrawableAt);
    }

    /**
     * @notice Pays the caller all of its unbonding stake.
     *
     * Emits a {Withdrawn} event.
     *
     * Requirements:
     *
     * - the caller has unbonding stake, and its delay has passed.
     */
    function withdraw() external {
        Stake storage own = _stakes[_msgSender()];
        uint256 amount = own.unbonding;
        if (amount == 0) {
            revert ProviderStakingNothingUnbonding(_msgSender());
        }
        if (block.timestamp < own.withdrawableAt) {
            revert ProviderStakingStillUnbonding(_msgSender(), own.withdrawableAt);
        }
        own.unbonding = 0;
        own.withdrawableAt = 0;
        emit Withdrawn(_msgSender(), amount);
        token.safeTransfer(_msgSender(), amount);
    }

    /**
     * @notice Sends `amount` of `provider`'s stake to the treasury for `reason`: bonded
     * stake first, then unbonding stake.
     *
     * Emits a {Slashed} event.
     *
     * Requirements:
     *
     * - the caller has `SLASHER_ROLE`.
     * - `amount` is not zero and at most `provider`'s bonded plus unbonding stake.
     */
    function slash(address provider, uint256 amount, string calldata reason) external onlyRole(SLASHER_ROLE) {
        if (amount == 0) {
            revert ProviderStakingZeroAmount();
        }
        Stake storage held = _stakes[provider];
        uint256 bonded = held.bonded;
        if (amount > bonded + held.unbonding) {
            revert ProviderStakingInsufficientStake(provider, amount, bonded + held.unbonding);
        }
        if (amount <= bonded) {
            held.bonded = bonded - amount;
        } else {
            held.bonded = 0;
            held.unbonding -= amount - bonded;
        }
        emit Slashed(provider, amount, reason);
        token.safeTransfer(treasury, amount);
    }

    /// @notice The bonded stake of `provider`: what counts for selection.
    function stakeOf(address provider) external view returns (uint256) {
        return _stakes[provider].bonded;
    }

    /// @notice The unbonding stake of `provider` and when it can be withdrawn (0 if none).
    function unbondingOf(address provider) external view returns (uint256 amount, uint256 withdrawableAt) {
        Stake storage held = _stakes[provider];
        return (held.unbonding, held.withdrawableAt);
    }

    /// @notice Whether `provider` has bonded at least `minimum`, the stake a task requires.
    function isEligible(address provider, uint256 minimum) external view returns (bool) {
        return _stakes[provider].bonded >= minimum;
    }
}
