// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC6372} from "@openzeppelin/contracts/interfaces/IERC6372.sol";

/**
 * @title IReputation
 * @notice Reputation scores with history, for contracts that weigh accounts by reputation
 * (a reputation-weighted Governor, a reward distributor).
 *
 * Past values are read at a timepoint of the contract's {IERC6372-clock}, like
 * {IVotes-getPastVotes}, so a vote can be weighed by the reputation held when it opened.
 */
interface IReputation is IERC6372 {
    /// @notice Emitted when the reputation of `holder` changes from `previous` to `current`.
    event ReputationChanged(address indexed holder, uint256 previous, uint256 current);

    /// @notice The current reputation of `holder`; zero for an account without one.
    function reputationOf(address holder) external view returns (uint256);

    /// @notice The reputation of `holder` at the end of `timepoint`, which must be in the past.
    function getPastReputation(address holder, uint256 timepoint) external view returns (uint256);

    /// @notice The sum of all reputations at the end of `timepoint`, which must be in the past.
    function getPastTotalReputation(uint256 timepoint) external view returns (uint256);
}
