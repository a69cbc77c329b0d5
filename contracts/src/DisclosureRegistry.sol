// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/**
 * @title DisclosureRegistry
 * @notice The disclosure policy and the differential privacy budget of every data set FLAI
 * queries, shared by all its providers.
 *
 * A data set is registered once with the sha256 of its disclosure policy and its total
 * privacy budget. Every federated query charges its privacy cost here before any provider
 * computes, and a charge past the budget reverts, so every provider sees the same spend and
 * no analyst can reset it. The budget is spent when charged and never refunded: a failed
 * query may already have drawn its noise.
 *
 * Costs are additive integers ("micro" units) computed off chain; the contract only adds and
 * compares. For Gaussian mechanisms the cost of a query is 1/z^2 (times one million), z being
 * its noise multiplier (noise standard deviation over sensitivity): a Gaussian mechanism is
 * (alpha, alpha / (2 z^2))-Renyi-DP at every order alpha, and Renyi-DP composes additively, so
 * a sequence of them is (alpha, alpha / 2 * sum(1/z^2))-RDP. The on-chain `spent` is therefore
 * exactly the quantity an RDP accountant composes, and the budget is the largest sum that
 * still converts to the data set's (epsilon, delta) target.
 *
 * Every write is idempotent: registering a data set again with identical content, or charging
 * the same query again with the same cost, returns `false` without an event, so an
 * orchestrator that retries a step never pays twice, while different content under a
 * registered key reverts, so neither a policy nor a charge can be rewritten.
 *
 * Roles: `REGISTRAR_ROLE` registers data sets (a data governance body can be granted it
 * later), `RECORDER_ROLE` charges queries (the orchestrator's account).
 */
contract DisclosureRegistry is AccessControl {
    /// @notice Role allowed to register data sets.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Role allowed to charge queries against a data set's budget.
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");

    /**
     * @notice A registered data set (one storage slot after its policy hash).
     * @param policyHash The sha256 of the data set's disclosure policy.
     * @param budget Total privacy budget, in the additive cost unit.
     * @param spent Sum of the costs charged so far; never above `budget`.
     * @param registeredBlock Block the data set was registered in.
     */
    struct Dataset {
        bytes32 policyHash;
        uint64 budget;
        uint64 spent;
        uint64 registeredBlock;
    }

    /// @notice One query's charge against one data set.
    struct Charge {
        uint64 cost;
        uint64 chargedBlock;
    }

    mapping(bytes32 datasetId => Dataset) private _datasets;
    mapping(bytes32 datasetId => mapping(bytes32 queryId => Charge)) private _charges;

    /// @notice Emitted when data set `datasetId` is registered.
    event DatasetRegistered(bytes32 indexed datasetId, bytes32 policyHash, uint64 budget);
    /// @notice Emitted when query `queryId` is charged `cost` against `datasetId`, which has then `spent` in all.
    event BudgetCharged(bytes32 indexed datasetId, bytes32 indexed queryId, uint64 cost, uint64 spent);

    /// @notice The admin given is the zero address.
    error DisclosureRegistryInvalidAdmin(address admin);
    /// @notice Data set `datasetId` needs a non-zero policy hash and a non-zero budget.
    error DisclosureRegistryInvalidPolicy(bytes32 datasetId);
    /// @notice Data set `datasetId` is already registered with policy `registeredPolicyHash`
    /// (or another budget), not with `givenPolicyHash`.
    error DisclosureRegistryPolicyConflict(bytes32 datasetId, bytes32 registeredPolicyHash, bytes32 givenPolicyHash);
    /// @notice Data set `datasetId` is not registered.
    error DisclosureRegistryUnknownDataset(bytes32 datasetId);
    /// @notice Query `queryId` cannot be charged nothing against `datasetId`.
    error DisclosureRegistryInvalidCharge(bytes32 datasetId, bytes32 queryId);
    /// @notice Query `queryId` is already charged against `datasetId` with another cost.
    error DisclosureRegistryChargeConflict(bytes32 datasetId, bytes32 queryId);
    /// @notice Data set `datasetId` has `remaining` of its budget left, less than `cost`.
    error DisclosureRegistryBudgetExceeded(bytes32 datasetId, uint64 cost, uint64 remaining);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE`, `REGISTRAR_ROLE` and `RECORDER_ROLE`.
     *
     * Requirements:
     *
     * - `admin` is not the zero address.
     */
    constructor(address admin) {
        if (admin == address(0)) {
            revert DisclosureRegistryInvalidAdmin(admin);
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(RECORDER_ROLE, admin);
    }

    /**
     * @notice Registers data set `datasetId`, whose disclosure policy hashes to `policyHash`,
     * with a total privacy budget of `budget`. Returns `false` if the data set was already
     * registered with identical content.
     *
     * Emits a {DatasetRegistered} event when the data set is new.
     *
     * Requirements:
     *
     * - the caller has `REGISTRAR_ROLE`.
     * - `policyHash` and `budget` are not zero.
     * - `datasetId` is new, or registered with the same policy hash and budget.
     */
    function registerDataset(
        bytes32 datasetId,
        bytes32 policyHash,
        uint64 budget
    ) external onlyRole(REGISTRAR_ROLE) returns (bool registered) {
        if (policyHash == bytes32(0) || budget == 0) {
            revert DisclosureRegistryInvalidPolicy(datasetId);
        }
        Dataset storage dataset = _datasets[datasetId];
        if (dataset.policyHash != bytes32(0)) {
            if (dataset.policyHash != policyHash || dataset.budget != budget) {
                revert DisclosureRegistryPolicyConflict(datasetId, dataset.policyHash, policyHash);
            }
            return false;
        }
        dataset.policyHash = policyHash;
        dataset.budget = budget;
        dataset.registeredBlock = uint64(block.number);
        emit DatasetRegistered(datasetId, policyHash, budget);
        return true;
    }

    /**
     * @notice Charges query `queryId` the privacy cost `cost` against data set `datasetId`.
     * Returns `false` if the query was already charged the same cost (nothing is spent again).
     *
     * Emits a {BudgetCharged} event when the charge is new.
     *
     * Requirements:
     *
     * - the caller has `RECORDER_ROLE`.
     * - data set `datasetId` is registered.
     * - `cost` is not zero.
     * - `queryId` is not yet charged against `datasetId`, or charged the same `cost`.
     * - a new charge fits in what is left of the budget (reaching it exactly is allowed).
     */
    function charge(
        bytes32 datasetId,
        bytes32 queryId,
        uint64 cost
    ) external onlyRole(RECORDER_ROLE) returns (bool charged) {
        Dataset storage dataset = _requireDataset(datasetId);
        if (cost == 0) {
            revert DisclosureRegistryInvalidCharge(datasetId, queryId);
        }
        Charge storage entry = _charges[datasetId][queryId];
        if (entry.cost != 0) {
            if (entry.cost != cost) {
                revert DisclosureRegistryChargeConflict(datasetId, queryId);
            }
            return false;
        }
        uint64 left = dataset.budget - dataset.spent;
        if (cost > left) {
            revert DisclosureRegistryBudgetExceeded(datasetId, cost, left);
        }
        uint64 spent = dataset.spent + cost;
        dataset.spent = spent;
        entry.cost = cost;
        entry.chargedBlock = uint64(block.number);
        emit BudgetCharged(datasetId, queryId, cost, spent);
        return true;
    }

    /**
     * @notice Data set `datasetId`.
     *
     * Requirements:
     *
     * - data set `datasetId` is registered.
     */
    function getDataset(bytes32 datasetId) external view returns (Dataset memory) {
        return _requireDataset(datasetId);
    }

    /**
     * @notice What is left of data set `datasetId`'s budget.
     *
     * Requirements:
     *
     * - data set `datasetId` is registered.
     */
    function remaining(bytes32 datasetId) external view returns (uint64) {
        Dataset storage dataset = _requireDataset(datasetId);
        return dataset.budget - dataset.spent;
    }

    /// @notice The cost query `queryId` was charged against `datasetId`; zero if none.
    function chargeOf(bytes32 datasetId, bytes32 queryId) external view returns (uint64 cost) {
        return _charges[datasetId][queryId].cost;
    }

    function _requireDataset(bytes32 datasetId) private view returns (Dataset storage dataset) {
        dataset = _datasets[datasetId];
        if (dataset.policyHash == bytes32(0)) {
            revert DisclosureRegistryUnknownDataset(datasetId);
        }
    }
}
