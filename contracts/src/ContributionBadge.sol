// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC6372Utils} from "@openzeppelin/contracts/utils/ERC6372Utils.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";
import {IERC5192} from "./interfaces/IERC5192.sol";
import {IMembership} from "./interfaces/IMembership.sol";
import {IReputation} from "./interfaces/IReputation.sol";

/**
 * @title ContributionBadge
 * @notice A soul-bound (ERC-5192) badge for accounts that contributed data or compute, with
 * a reputation score per holder.
 *
 * Each account holds at most one badge. Badges are minted and burned but never transferred:
 * a contribution record that could be sold would be worthless as reputation. Reputation is
 * kept with history ({IReputation}, block-number clock) so that a reputation-weighted Governor
 * or a reward distributor added later can weigh an account by its score at a past block.
 * Membership is kept with history too ({IMembership}): a Governor asks whether an account
 * held a badge, and how many did, when a proposal opened.
 *
 * Roles: `MINTER_ROLE` issues and revokes badges; `REPUTATION_ROLE` sets scores. Either can
 * be granted to future contracts (a reward distributor, a DAO timelock).
 */
contract ContributionBadge is ERC721, AccessControl, IERC5192, IMembership {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice Role allowed to mint badges and to revoke (burn) any badge.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice Role allowed to set reputation scores.
    bytes32 public constant REPUTATION_ROLE = keccak256("REPUTATION_ROLE");

    uint256 private _lastTokenId;
    mapping(address holder => uint256 tokenId) private _badgeOf;
    mapping(address holder => Checkpoints.Trace208) private _reputation;
    Checkpoints.Trace208 private _totalReputation;
    mapping(address holder => Checkpoints.Trace208) private _holding; // 1 while a badge is held
    Checkpoints.Trace208 private _holderCount;

    /// @notice The admin given is the zero address.
    error ContributionBadgeInvalidAdmin(address admin);
    /// @notice Badges cannot change hands; `tokenId` was about to move from `from` to `to`.
    error ContributionBadgeSoulbound(uint256 tokenId, address from, address to);
    /// @notice `holder` already holds badge `tokenId`; an account holds at most one.
    error ContributionBadgeAlreadyHeld(address holder, uint256 tokenId);
    /// @notice `holder` holds no badge, so it cannot have a reputation.
    error ContributionBadgeNotHeld(address holder);
    /// @notice `caller` is neither the holder of `tokenId` nor a minter.
    error ContributionBadgeUnauthorizedBurn(address caller, uint256 tokenId);
    /// @notice `timepoint` is not yet in the past of the clock, which reads `clock`.
    error ContributionBadgeFutureLookup(uint256 timepoint, uint48 clock);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE`, `MINTER_ROLE` and `REPUTATION_ROLE`.
     *
     * Requirements:
     *
     * - `admin` is not the zero address.
     */
    constructor(address admin) ERC721("FLAI Contribution Badge", "FLAIB") {
        if (admin == address(0)) {
            revert ContributionBadgeInvalidAdmin(admin);
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
        _grantRole(REPUTATION_ROLE, admin);
    }

    /**
     * @notice Issues a new badge to `to` and returns its id (ids start at 1).
     *
     * Emits a {Transfer} event from the zero address and a {Locked} event.
     *
     * Requirements:
     *
     * - the caller has `MINTER_ROLE`.
     * - `to` is not the zero address and holds no badge.
     */
    function mint(address to) external onlyRole(MINTER_ROLE) returns (uint256 tokenId) {
        tokenId = ++_lastTokenId;
        _mint(to, tokenId);
    }

    /**
     * @notice Destroys badge `tokenId` and clears its holder's reputation.
     *
     * Emits a {Transfer} event to the zero address, and a {ReputationChanged} event if the
     * holder had a non-zero reputation.
     *
     * Requirements:
     *
     * - `tokenId` exists.
     * - the caller holds `tokenId` or has `MINTER_ROLE`.
     */
    function burn(uint256 tokenId) external {
        address holder = _requireOwned(tokenId);
        if (_msgSender() != holder && !hasRole(MINTER_ROLE, _msgSender())) {
            revert ContributionBadgeUnauthorizedBurn(_msgSender(), tokenId);
        }
        _burn(tokenId);
    }

    /**
     * @notice Sets the reputation of `holder` to `score`.
     *
     * Emits a {ReputationChanged} event when the score changes.
     *
     * Requirements:
     *
     * - the caller has `REPUTATION_ROLE`.
     * - `holder` holds a badge.
     * - `score` fits in 208 bits.
     */
    function setReputation(address holder, uint256 score) external onlyRole(REPUTATION_ROLE) {
        if (_badgeOf[holder] == 0) {
            revert ContributionBadgeNotHeld(holder);
        }
        _setReputation(holder, score);
    }

    /// @notice The badge id held by `holder`, or 0 if it holds none.
    function badgeOf(address holder) external view returns (uint256) {
        return _badgeOf[holder];
    }

    /// @inheritdoc IERC5192
    function locked(uint256 tokenId) external view returns (bool) {
        _requireOwned(tokenId);
        return true;
    }

    /// @inheritdoc IReputation
    function reputationOf(address holder) external view returns (uint256) {
        return _reputation[holder].latest();
    }

    /// @notice The sum of all holders' current reputations.
    function totalReputation() external view returns (uint256) {
        return _totalReputation.latest();
    }

    /// @inheritdoc IReputation
    function getPastReputation(address holder, uint256 timepoint) external view returns (uint256) {
        return _reputation[holder].upperLookupRecent(_validateTimepoint(timepoint));
    }

    /// @inheritdoc IReputation
    function getPastTotalReputation(uint256 timepoint) external view returns (uint256) {
        return _totalReputation.upperLookupRecent(_validateTimepoint(timepoint));
    }

    /// @inheritdoc IMembership
    function isPastHolder(address account, uint256 timepoint) external view returns (bool) {
        return _holding[account].upperLookupRecent(_validateTimepoint(timepoint)) != 0;
    }

    /// @inheritdoc IMembership
    function getPastHolderCount(uint256 timepoint) external view returns (uint256) {
        return _holderCount.upperLookupRecent(_validateTimepoint(timepoint));
    }

    /// @notice The current block number: reputation and membership history are keyed by block.
    function clock() public view returns (uint48) {
        return Time.blockNumber();
    }

    /// @notice Machine-readable description of {clock} (ERC-6372).
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() external view returns (string memory) {
        return ERC6372Utils.blockNumberClockMode(clock());
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return
            interfaceId == type(IERC5192).interfaceId ||
            interfaceId == type(IReputation).interfaceId ||
            interfaceId == type(IMembership).interfaceId ||
            super.supportsInterface(interfaceId);
    }

    /**
     * @dev The one path of mint, burn and transfer: lets only mint and burn through, keeps
     * one badge per holder, emits {Locked} on mint and clears reputation on burn; checkpoints
     * membership (the holder's and the count) either way.
     */
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = _ownerOf(tokenId);
        if (from != address(0) && to != address(0)) {
            revert ContributionBadgeSoulbound(tokenId, from, to);
        }
        if (to != address(0) && _badgeOf[to] != 0) {
            revert ContributionBadgeAlreadyHeld(to, _badgeOf[to]);
        }
        super._update(to, tokenId, auth);
        uint48 now_ = clock();
        if (from == address(0)) {
            _badgeOf[to] = tokenId;
            _holding[to].push(now_, 1);
            _holderCount.push(now_, _holderCount.latest() + 1);
            emit Locked(tokenId);
        } else {
            delete _badgeOf[from];
            _holding[from].push(now_, 0);
            _holderCount.push(now_, _holderCount.latest() - 1);
            _setReputation(from, 0);
        }
    }

    function _setReputation(address holder, uint256 score) private {
        uint256 previous = _reputation[holder].latest();
        if (previous == score) {
            return;
        }
        uint48 now_ = clock();
        _reputation[holder].push(now_, SafeCast.toUint208(score));
        _totalReputation.push(now_, SafeCast.toUint208(_totalReputation.latest() - previous + score));
        emit ReputationChanged(holder, previous, score);
    }

    function _validateTimepoint(uint256 timepoint) private view returns (uint48) {
        uint48 now_ = clock();
        if (timepoint >= now_) {
            revert ContributionBadgeFutureLookup(timepoint, now_);
        }
        return SafeCast.toUint48(timepoint);
    }
}
