// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {VotingWeights} from "./FLAIGovernor.sol";
import {IMembership} from "./interfaces/IMembership.sol";

/**
 * @title SubDAOFactory
 * @notice Creates one SubDAO per domain (healthcare, finance, ...): a {FLAIGovernor} over
 * the FLAI token and the contribution badge, and the TimelockController it governs. The
 * SuperDAO's timelock owns the factory, so a domain gets its SubDAO through a SuperDAO
 * proposal. A domain has one SubDAO for good.
 *
 * Each SubDAO's timelock has its Governor as its only proposer and canceller, anyone as
 * executor (the Governor decides, anyone may carry out what was decided after the delay) and
 * no admin: the factory renounces the admin role it creates it with, so only the SubDAO's
 * own proposals can change it afterwards.
 *
 * Why the Governor's creation code is handed in: the factory must fit EIP-170 (24,576 bytes
 * of runtime code) on every chain, and the Governor's creation code (about 22 KB) and the
 * timelock's (about 7.5 KB) do not fit in it together. The timelock's is built in; the
 * Governor's comes with each call and must hash to {governorCodeHash}, fixed at
 * construction, so a proposal cannot slip in another contract. Both are deployed with
 * CREATE2, salted with the domain, so their addresses can be known before the proposal runs.
 * (Cloning is not an option: OpenZeppelin's Governor keeps its token and name in immutables.)
 */
contract SubDAOFactory is Ownable {
    /**
     * @notice The governance parameters of a new SubDAO.
     * @param votingDelay Blocks between a proposal and the start of its vote.
     * @param votingPeriod Blocks the vote lasts.
     * @param proposalThreshold Voting power needed to propose.
     * @param quorumNumerator Quorum, in percent of the electorate's largest possible weight.
     * @param timelockDelay Seconds between queueing a passed proposal and executing it.
     */
    struct GovernanceParams {
        uint48 votingDelay;
        uint32 votingPeriod;
        uint256 proposalThreshold;
        uint256 quorumNumerator;
        uint256 timelockDelay;
    }

    /// @notice A domain's Governor and the timelock that executes its proposals.
    struct SubDAO {
        address governor;
        address timelock;
    }

    /// @notice The votes token every SubDAO counts (FLAIToken).
    IVotes public immutable token;
    /// @notice The membership and reputation badge every SubDAO weighs (ContributionBadge).
    IMembership public immutable badge;
    /// @notice keccak256 of the only Governor creation code {createSubDAO} deploys.
    bytes32 public immutable governorCodeHash;

    mapping(bytes32 domainHash => SubDAO) private _subDAOs;

    /// @notice The SubDAO of `domain` was created: `governor` proposes to `timelock`.
    event SubDAOCreated(
        bytes32 indexed domainHash,
        string domain,
        address governor,
        address timelock,
        VotingWeights weights
    );

    /// @notice A token or badge given is the zero address.
    error SubDAOFactoryInvalidDependency(address token, address badge);
    /// @notice A SubDAO needs a domain name.
    error SubDAOFactoryEmptyDomain();
    /// @notice `domain` already has a SubDAO, governed by `governor`.
    error SubDAOFactoryDomainExists(string domain, address governor);
    /// @notice The Governor code handed in hashes to `actual`, not to {governorCodeHash}.
    error SubDAOFactoryUnexpectedCode(bytes32 actual, bytes32 expected);

    /**
     * @param owner_ Who may create SubDAOs: the SuperDAO's timelock.
     * @param token_ The votes token (FLAIToken).
     * @param badge_ The membership and reputation badge (ContributionBadge).
     * @param governorCodeHash_ keccak256 of FLAIGovernor's creation code.
     *
     * Requirements:
     *
     * - none of `owner_`, `token_`, `badge_` is the zero address.
     */
    constructor(address owner_, IVotes token_, IMembership badge_, bytes32 governorCodeHash_) Ownable(owner_) {
        if (address(token_) == address(0) || address(badge_) == address(0)) {
            revert SubDAOFactoryInvalidDependency(address(token_), address(badge_));
        }
        token = token_;
        badge = badge_;
        governorCodeHash = governorCodeHash_;
    }

    /**
     * @notice Creates the SubDAO of `domain`: a timelock with delay `params.timelockDelay`
     * and a Governor named "FLAI SubDAO <domain>" that weighs votes by `weights`.
     * @param governorCode FLAIGovernor's creation code (without constructor arguments).
     *
     * Emits a {SubDAOCreated} event.
     *
     * Requirements:
     *
     * - the caller is the owner (the SuperDAO's timelock).
     * - `domain` is not empty and has no SubDAO yet.
     * - `governorCode` hashes to {governorCodeHash}.
     * - `weights` and `params` are valid for {FLAIGovernor}'s constructor.
     */
    function createSubDAO(
        string memory domain,
        VotingWeights calldata weights,
        GovernanceParams calldata params,
        bytes memory governorCode
    ) external onlyOwner returns (address governor, address timelock) {
        if (bytes(domain).length == 0) {
            revert SubDAOFactoryEmptyDomain();
        }
        bytes32 domainHash = keccak256(bytes(domain));
        if (_subDAOs[domainHash].governor != address(0)) {
            revert SubDAOFactoryDomainExists(domain, _subDAOs[domainHash].governor);
        }
        if (keccak256(governorCode) != governorCodeHash) {
            revert SubDAOFactoryUnexpectedCode(keccak256(governorCode), governorCodeHash);
        }

        address[] memory openExecutor = new address[](1); // address(0): anyone executes
        TimelockController created = new TimelockController{salt: domainHash}(
            params.timelockDelay,
            new address[](0),
            openExecutor,
            address(this)
        );
        timelock = address(created);
        bytes memory initCode = bytes.concat(governorCode, _governorArguments(domain, weights, params, timelock));
        governor = Create2.deploy(0, domainHash, initCode);

        created.grantRole(created.PROPOSER_ROLE(), governor);
        created.grantRole(created.CANCELLER_ROLE(), governor);
        created.renounceRole(created.DEFAULT_ADMIN_ROLE(), address(this));

        _subDAOs[domainHash] = SubDAO(governor, timelock);
        emit SubDAOCreated(domainHash, domain, governor, timelock, weights);
    }

    /// @notice The Governor and timelock of `domain`'s SubDAO; zero addresses if it has none.
    function subDAO(string calldata domain) external view returns (address governor, address timelock) {
        SubDAO storage found = _subDAOs[keccak256(bytes(domain))];
        return (found.governor, found.timelock);
    }

    /// @notice The timelock that executes `domain`'s decisions; the zero address if it has no SubDAO.
    function timelockOf(string calldata domain) external view returns (address) {
        return _subDAOs[keccak256(bytes(domain))].timelock;
    }

    /// @dev FLAIGovernor's ABI-encoded constructor arguments for `domain`'s SubDAO.
    function _governorArguments(
        string memory domain,
        VotingWeights calldata weights,
        GovernanceParams calldata params,
        address timelock
    ) private view returns (bytes memory) {
        return
            abi.encode(
                string.concat("FLAI SubDAO ", domain),
                token,
                badge,
                timelock,
                params.votingDelay,
                params.votingPeriod,
                params.proposalThreshold,
                params.quorumNumerator,
                weights
            );
    }
}
