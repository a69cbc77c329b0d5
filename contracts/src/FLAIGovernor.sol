// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IMembership} from "./interfaces/IMembership.sol";

/**
 * @notice How a {FLAIGovernor} weighs a vote: the share, in basis points, of each of its three
 * parts. Each is at most 10000 and they do not all vanish; they need not sum to 10000 (a sum
 * above it only scales every vote and the quorum alike).
 * @param tokenBps Token-weighted: the voter's delegated FLAI.
 * @param quadraticBps Quadratic: the square root of the voter's delegated FLAI (badge holders only).
 * @param reputationBps Reputation-weighted: the voter's badge reputation (badge holders only).
 */
struct VotingWeights {
    uint16 tokenBps;
    uint16 quadraticBps;
    uint16 reputationBps;
}

/**
 * @title FLAIGovernor
 * @notice The Governor of FLAI's SuperDAO and of every domain SubDAO: OpenZeppelin's Governor
 * (simple counting, settings, token votes, a quorum fraction, a timelock) with a vote weight
 * that combines three parts, fixed at deployment ({VotingWeights}).
 *
 * For an account with `v` FLAI base units delegated to it at the proposal's snapshot:
 *
 *     power = (tokenBps * v
 *              + quadraticBps * sqrt(v * 1e18)     if it held a badge at the snapshot
 *              + reputationBps * reputation * 1e18  if it held a badge at the snapshot
 *             ) / 10000
 *
 * so 1 FLAI is one token-weighted vote, one quadratic vote (sqrt(1e18 * 1e18) = 1e18) and one
 * reputation point one FLAI-equivalent vote: `{10000, 0, 0}` is plain token voting,
 * `{0, 10000, 0}` quadratic voting (100x the tokens give 10x the votes), `{0, 0, 10000}`
 * reputation voting, and any mix is their weighted sum.
 *
 * The quadratic and reputation parts count only for holders of the soul-bound
 * ContributionBadge, which allows one badge per account and cannot be transferred: one
 * identity, one badge. That is what keeps quadratic voting honest: without it, splitting
 * 100 FLAI over 100 accounts would turn 10 quadratic votes into 100. Identities are as good as
 * the badge minter's check of who is a contributor. Token and badge must share the clock
 * (block numbers).
 *
 * The quorum is the quorum fraction of the largest weight the electorate could cast at the
 * snapshot: the same combination applied to the total supply, `n` badge holders holding it
 * all in equal shares (which maximises the sum of square roots: sqrt(n * supply * 1e18)),
 * and the total reputation. For `{10000, 0, 0}` it equals {GovernorVotesQuorumFraction}'s.
 *
 * Balances are multiplied by 1e18 under the square root: a vote of more than about 1e41 FLAI
 * would overflow and revert, far beyond any supply FLAI will have.
 */
contract FLAIGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    uint256 private constant BPS = 10_000;
    uint256 private constant ONE_FLAI = 1e18;

    /// @notice The badge whose holders get the quadratic and reputation parts of a vote.
    IMembership public immutable badge;
    uint16 private immutable _tokenBps;
    uint16 private immutable _quadraticBps;
    uint16 private immutable _reputationBps;

    /// @notice A weight is above 10000 basis points, or all three are zero.
    error FLAIGovernorInvalidWeights(uint16 tokenBps, uint16 quadraticBps, uint16 reputationBps);

    /**
     * @param name_ The Governor's name (its EIP-712 domain).
     * @param token_ The votes token (FLAIToken).
     * @param badge_ The membership and reputation badge (ContributionBadge).
     * @param timelock_ The timelock that executes proposals; this Governor must be its proposer.
     * @param votingDelay_ Blocks between a proposal and the start of its vote (its snapshot).
     * @param votingPeriod_ Blocks the vote lasts.
     * @param proposalThreshold_ Voting power needed to propose.
     * @param quorumNumerator_ Quorum, in percent of the electorate's largest possible weight.
     * @param weights How a vote is weighed, fixed for good.
     *
     * Requirements:
     *
     * - each weight is at most 10000 and at least one is not zero.
     */
    constructor(
        string memory name_,
        IVotes token_,
        IMembership badge_,
        TimelockController timelock_,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumNumerator_,
        VotingWeights memory weights
    )
        Governor(name_)
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(quorumNumerator_)
        GovernorTimelockControl(timelock_)
    {
        if (
            weights.tokenBps > BPS ||
            weights.quadraticBps > BPS ||
            weights.reputationBps > BPS ||
            uint256(weights.tokenBps) + weights.quadraticBps + weights.reputationBps == 0
        ) {
            revert FLAIGovernorInvalidWeights(weights.tokenBps, weights.quadraticBps, weights.reputationBps);
        }
        badge = badge_;
        _tokenBps = weights.tokenBps;
        _quadraticBps = weights.quadraticBps;
        _reputationBps = weights.reputationBps;
    }

    /// @notice How this Governor weighs a vote.
    function votingWeights() external view returns (VotingWeights memory) {
        return VotingWeights(_tokenBps, _quadraticBps, _reputationBps);
    }

    /**
     * @notice The quorum fraction of the largest weight the electorate could cast at
     * `timepoint` (see the contract's description).
     */
    function quorum(
        uint256 timepoint
    ) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        uint256 supply = token().getPastTotalSupply(timepoint);
        uint256 electorate = _tokenBps * supply;
        if (_quadraticBps != 0) {
            electorate += _quadraticBps * Math.sqrt(badge.getPastHolderCount(timepoint) * supply * ONE_FLAI);
        }
        if (_reputationBps != 0) {
            electorate += _reputationBps * badge.getPastTotalReputation(timepoint) * ONE_FLAI;
        }
        return Math.mulDiv(electorate / BPS, quorumNumerator(timepoint), quorumDenominator());
    }

    /// @inheritdoc Governor
    function state(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    /// @inheritdoc Governor
    function proposalNeedsQueuing(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (bool) {
        return super.proposalNeedsQueuing(proposalId);
    }

    /// @inheritdoc Governor
    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    /**
     * @dev The weight of `account`'s vote at `timepoint`: the combination of its delegated
     * FLAI, their square root and its reputation described above; the badge is read only
     * when a weight needs it.
     */
    function _getVotes(
        address account,
        uint256 timepoint,
        bytes memory /* params */
    ) internal view override(Governor, GovernorVotes) returns (uint256) {
        uint256 tokens = token().getPastVotes(account, timepoint);
        uint256 power = _tokenBps * tokens;
        if ((_quadraticBps != 0 || _reputationBps != 0) && badge.isPastHolder(account, timepoint)) {
            power +=
                _quadraticBps * Math.sqrt(tokens * ONE_FLAI) +
                _reputationBps * badge.getPastReputation(account, timepoint) * ONE_FLAI;
        }
        return power / BPS;
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
