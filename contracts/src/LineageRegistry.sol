// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/**
 * @title LineageRegistry
 * @notice The on-chain lineage of FLAI: which task trained which model in which round, from
 * whom, with what quality; and which federated query was answered, at what privacy cost.
 *
 * Only hashes, CIDs and counts are stored; models and data stay off chain. Every record is
 * idempotent: recording the same key again with identical content returns `false` without an
 * event, so an orchestrator that retries a step cannot record twice, while different content
 * under a recorded key reverts, so lineage cannot be rewritten.
 *
 * Roles: `REGISTRAR_ROLE` registers tasks (a governance DAO that approves tasks can be granted
 * it later), `RECORDER_ROLE` records rounds and queries (the orchestrator's account).
 */
contract LineageRegistry is AccessControl {
    /// @notice Role allowed to register training tasks.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Role allowed to record rounds and queries.
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");

    /**
     * @notice Quality of a round's model, as fixed-point integers (one storage slot).
     * @param accuracyPpm Accuracy in parts per million (0.9731 is 973100).
     * @param lossMicro Loss times one million.
     * @param participants Number of providers whose updates were aggregated.
     * @param samples Total training samples behind the round.
     */
    struct Metrics {
        uint32 accuracyPpm;
        uint64 lossMicro;
        uint32 participants;
        uint64 samples;
    }

    /// @notice A training task. `roundCount` is also the number the next round must carry.
    struct Task {
        address owner;
        uint64 registeredBlock;
        uint32 roundCount;
        string specCid;
        string datasetName;
    }

    /// @notice One recorded training round.
    struct Round {
        bytes32 modelSha256;
        bytes32 participantsCommitment;
        bytes32 qualityReportHash;
        Metrics metrics;
        uint64 recordedBlock;
        string modelCid;
    }

    /// @notice One answered federated query.
    struct Query {
        bytes32 sqlHash;
        bytes32 participantsCommitment;
        bytes32 resultHash;
        uint64 epsilonSpentMicro;
        uint32 suppressedGroups;
        uint64 recordedBlock;
    }

    mapping(bytes32 taskId => Task) private _tasks;
    mapping(bytes32 taskId => mapping(uint32 round => Round)) private _rounds;
    mapping(bytes32 queryId => Query) private _queries;

    /// @notice Emitted when task `taskId` is registered.
    event TaskRegistered(bytes32 indexed taskId, address indexed owner, string specCid, string datasetName);
    /// @notice Emitted when `round` of task `taskId` is recorded.
    event RoundRecorded(
        bytes32 indexed taskId,
        uint32 indexed round,
        string modelCid,
        bytes32 modelSha256,
        bytes32 participantsCommitment,
        bytes32 qualityReportHash,
        Metrics metrics
    );
    /// @notice Emitted when query `queryId` is recorded.
    event QueryRecorded(
        bytes32 indexed queryId,
        bytes32 sqlHash,
        bytes32 participantsCommitment,
        uint32 suppressedGroups,
        uint64 epsilonSpentMicro,
        bytes32 resultHash
    );

    /// @notice The admin given is the zero address.
    error LineageRegistryInvalidAdmin(address admin);
    /// @notice Task `taskId` cannot be owned by the zero address.
    error LineageRegistryInvalidOwner(bytes32 taskId, address owner);
    /// @notice Task `taskId` is already registered with different content.
    error LineageRegistryTaskConflict(bytes32 taskId);
    /// @notice Task `taskId` is not registered.
    error LineageRegistryUnknownTask(bytes32 taskId);
    /// @notice Round `round` of task `taskId` skips ahead: the next round is `expected`.
    error LineageRegistryRoundOutOfOrder(bytes32 taskId, uint32 round, uint32 expected);
    /// @notice Round `round` of task `taskId` is already recorded with different content.
    error LineageRegistryRoundConflict(bytes32 taskId, uint32 round);
    /// @notice Round `round` of task `taskId` is not recorded.
    error LineageRegistryUnknownRound(bytes32 taskId, uint32 round);
    /// @notice Query `queryId` is already recorded with different content.
    error LineageRegistryQueryConflict(bytes32 queryId);
    /// @notice Query `queryId` is not recorded.
    error LineageRegistryUnknownQuery(bytes32 queryId);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE`, `REGISTRAR_ROLE` and `RECORDER_ROLE`.
     *
     * Requirements:
     *
     * - `admin` is not the zero address.
     */
    constructor(address admin) {
        if (admin == address(0)) {
            revert LineageRegistryInvalidAdmin(admin);
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(RECORDER_ROLE, admin);
    }

    /**
     * @notice Registers training task `taskId`, owned by `owner`, whose model spec is at
     * `specCid` and which trains on the dataset named `datasetName`. Returns `false` if the
     * task was already registered with identical content.
     *
     * Emits a {TaskRegistered} event when the task is new.
     *
     * Requirements:
     *
     * - the caller has `REGISTRAR_ROLE`.
     * - `owner` is not the zero address.
     * - `taskId` is new, or registered with the same owner, spec and dataset.
     */
    function registerTask(
        bytes32 taskId,
        address owner,
        string calldata specCid,
        string calldata datasetName
    ) external onlyRole(REGISTRAR_ROLE) returns (bool registered) {
        if (owner == address(0)) {
            revert LineageRegistryInvalidOwner(taskId, owner);
        }
        Task storage task = _tasks[taskId];
        if (task.owner != address(0)) {
            if (task.owner != owner || !_equal(task.specCid, specCid) || !_equal(task.datasetName, datasetName)) {
                revert LineageRegistryTaskConflict(taskId);
            }
            return false;
        }
        task.owner = owner;
        task.registeredBlock = uint64(block.number);
        task.specCid = specCid;
        task.datasetName = datasetName;
        emit TaskRegistered(taskId, owner, specCid, datasetName);
        return true;
    }

    /**
     * @notice Records round `round` of task `taskId`: the aggregated model (`modelCid` on IPFS,
     * `modelSha256` of its plaintext), a commitment to the participants, the hash of the data
     * quality report and the model's metrics. Returns `false` if the round was already
     * recorded with identical content.
     *
     * Emits a {RoundRecorded} event when the round is new.
     *
     * Requirements:
     *
     * - the caller has `RECORDER_ROLE`.
     * - task `taskId` is registered.
     * - `round` is the task's next round (rounds count from 0), or an earlier round recorded
     *   with identical content.
     */
    function recordRound(
        bytes32 taskId,
        uint32 round,
        string calldata modelCid,
        bytes32 modelSha256,
        bytes32 participantsCommitment,
        bytes32 qualityReportHash,
        Metrics calldata metrics
    ) external onlyRole(RECORDER_ROLE) returns (bool recorded) {
        Task storage task = _requireTask(taskId);
        uint32 expected = task.roundCount;
        if (round > expected) {
            revert LineageRegistryRoundOutOfOrder(taskId, round, expected);
        }
        Round storage entry = _rounds[taskId][round];
        if (round < expected) {
            if (
                entry.modelSha256 != modelSha256 ||
                entry.participantsCommitment != participantsCommitment ||
                entry.qualityReportHash != qualityReportHash ||
                !_sameMetrics(entry.metrics, metrics) ||
                !_equal(entry.modelCid, modelCid)
            ) {
                revert LineageRegistryRoundConflict(taskId, round);
            }
            return false;
        }
        task.roundCount = expected + 1;
        entry.modelSha256 = modelSha256;
        entry.participantsCommitment = participantsCommitment;
        entry.qualityReportHash = qualityReportHash;
        entry.metrics = metrics;
        entry.recordedBlock = uint64(block.number);
        entry.modelCid = modelCid;
        emit RoundRecorded(taskId, round, modelCid, modelSha256, participantsCommitment, qualityReportHash, metrics);
        return true;
    }

    /**
     * @notice Records federated query `queryId`: the hash of its SQL, a commitment to the
     * providers that answered, how many groups were suppressed as too small, the differential
     * privacy budget spent (epsilon times one million) and the hash of the released result.
     * Returns `false` if the query was already recorded with identical content.
     *
     * Emits a {QueryRecorded} event when the query is new.
     *
     * Requirements:
     *
     * - the caller has `RECORDER_ROLE`.
     * - `queryId` is new, or recorded with identical content.
     */
    function recordQuery(
        bytes32 queryId,
        bytes32 sqlHash,
        bytes32 participantsCommitment,
        uint32 suppressedGroups,
        uint64 epsilonSpentMicro,
        bytes32 resultHash
    ) external onlyRole(RECORDER_ROLE) returns (bool recorded) {
        Query storage query = _queries[queryId];
        if (query.recordedBlock != 0) {
            if (
                query.sqlHash != sqlHash ||
                query.participantsCommitment != participantsCommitment ||
                query.suppressedGroups != suppressedGroups ||
                query.epsilonSpentMicro != epsilonSpentMicro ||
                query.resultHash != resultHash
            ) {
                revert LineageRegistryQueryConflict(queryId);
            }
            return false;
        }
        query.sqlHash = sqlHash;
        query.participantsCommitment = participantsCommitment;
        query.resultHash = resultHash;
        query.epsilonSpentMicro = epsilonSpentMicro;
        query.suppressedGroups = suppressedGroups;
        query.recordedBlock = uint64(block.number);
        emit QueryRecorded(queryId, sqlHash, participantsCommitment, suppressedGroups, epsilonSpentMicro, resultHash);
        return true;
    }

    /**
     * @notice Task `taskId`.
     *
     * Requirements:
     *
     * - task `taskId` is registered.
     */
    function getTask(bytes32 taskId) external view returns (Task memory) {
        return _requireTask(taskId);
    }

    /// @notice The number of rounds recorded for `taskId`; zero for an unknown task.
    function roundCount(bytes32 taskId) external view returns (uint32) {
        return _tasks[taskId].roundCount;
    }

    /**
     * @notice Round `round` of task `taskId`.
     *
     * Requirements:
     *
     * - the round is recorded.
     */
    function getRound(bytes32 taskId, uint32 round) external view returns (Round memory) {
        if (round >= _tasks[taskId].roundCount) {
            revert LineageRegistryUnknownRound(taskId, round);
        }
        return _rounds[taskId][round];
    }

    /**
     * @notice Query `queryId`.
     *
     * Requirements:
     *
     * - the query is recorded.
     */
    function getQuery(bytes32 queryId) external view returns (Query memory query) {
        query = _queries[queryId];
        if (query.recordedBlock == 0) {
            revert LineageRegistryUnknownQuery(queryId);
        }
    }

    function _requireTask(bytes32 taskId) private view returns (Task storage task) {
        task = _tasks[taskId];
        if (task.owner == address(0)) {
            revert LineageRegistryUnknownTask(taskId);
        }
    }

    function _sameMetrics(Metrics storage stored, Metrics calldata given) private view returns (bool) {
        return
            stored.accuracyPpm == given.accuracyPpm &&
            stored.lossMicro == given.lossMicro &&
            stored.participants == given.participants &&
            stored.samples == given.samples;
    }

    function _equal(string storage stored, string calldata given) private pure returns (bool) {
        return keccak256(bytes(stored)) == keccak256(bytes(given));
    }
}
