// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IReputation} from "./IReputation.sol";

/**
 * @title IMembership
 * @notice Membership with history, next to reputation with history: who held a soul-bound
 * badge at a past timepoint, and how many did, so that a Governor can weigh a vote by what
 * its voter was when the proposal opened (a badge minted later counts for later proposals).
 *
 * Past values are read at a timepoint of the contract's {IERC6372-clock}, like
 * {IVotes-getPastVotes}.
 */
interface IMembership is IReputation {
    /// @notice Whether `account` held a badge at the end of `timepoint`, which must be in the past.
    function isPastHolder(address account, uint256 timepoint) external view returns (bool);

    /// @notice How many accounts held a badge at the end of `timepoint`, which must be in the past.
    function getPastHolderCount(uint256 timepoint) external view returns (uint256);
}
