// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {RewardDistributor} from "./RewardDistributor.sol";
import {SubDAOFactory} from "./SubDAOFactory.sol";

/**
 * @title TaskRegistry
 * @notice Training tasks governed by their domain's SubDAO, from proposal to paid reward.
 *
 * A modeler proposes a task and escrows its reward pool; the domain's SubDAO approves it
 * through a proposal; the coordinator trains it and records the model with its quality and
 * fairness metrics; the SubDAO accepts the model through a second proposal; the settler then
 * releases the pool into the RewardDistributor, which pays the contributors.
 *
 *     Proposed --approveTask--> Approved --recordResult--> Trained --acceptModel--> Accepted --releasePool--> Settled
 *        |-- rejectTask / closeDefeated --> Rejected             |-- closeDefeated --> ModelRejected
 *        |-- cancelTask (modeler) --> Cancelled
 *
 * Every way out before Settled refunds the pool to the modeler; only an accepted model pays.
 *
 * Each decision has one canonical proposal, the same on chain and off: one call of this
 * registry ({approveTask} or {acceptModel}) with the description "Approve task <name>" or
 * "Accept model of task <name>" ({approvalProposal}, {validationProposal}). Anyone can
 * therefore propose, queue and execute it, and anyone can close a stage whose canonical
 * proposal was defeated ({closeDefeated}), so a task cannot be held hostage by whoever
 * proposed it. A canonical proposal that was canceled cannot be proposed again (its id is
 * taken), so it closes its stage like a defeat.
 *
 * Records are idempotent like LineageRegistry's: proposing the same task or recording the
 * same result again changes nothing and emits nothing; different content reverts.
 *
 * Roles: `RECORDER_ROLE` records results (the coordinator), `SETTLER_ROLE` releases pools
 * (the settlement flow). Approvals and verdicts belong to the domain's timelock alone.
 */
contract TaskRegistry is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to record a task's trained model.
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");
    /// @notice Role allowed to release an accepted task's pool to the reward distributor.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    /// @notice Where a task stands; `None` for an id never proposed.
    enum TaskState {
        None,
        Proposed,
        Approved,
        Rejected,
        Cancelled,
        Trained,
        Accepted,
        ModelRejected,
        Settled
    }

    /**
     * @notice Quality and fairness of a trained model, in parts per million (one slot).
     * @param accuracyPpm Accuracy (0.9731 is 973100).
     * @param aucPpm Area under the ROC curve.
     * @param parityGapPpm Demographic parity gap between groups.
     * @param opportunityGapPpm Equal opportunity gap between groups.
     */
    struct Metrics {
        uint32 accuracyPpm;
        uint32 aucPpm;
        uint32 parityGapPpm;
        uint32 opportunityGapPpm;
    }

    /// @notice A governed task; the block numbers are 0 until their event happened.
    struct Task {
        TaskState state;
        address modeler;
        uint64 approvedBlock;
        uint64 acceptedBlock;
        Metrics metrics;
        uint256 pool;
        string name;
        string domain;
        string specCid;
        string dataset;
        string modelCid;
        string reportCid;
    }

    /// @notice The token pools are escrowed and paid in (FLAI).
    IERC20 public immutable token;
    /// @notice Where each domain's SubDAO is found.
    SubDAOFactory public immutable factory;
    /// @notice Where released pools go.
    RewardDistributor public immutable distributor;

    mapping(bytes32 taskId => Task) private _tasks;
    // Every task id, in the order proposed: a client lists tasks with calls, never by reading
    // the whole event history (which a node may have pruned, and which costs a long chain).
    bytes32[] private _taskIds;

    /// @notice `modeler` proposed task `taskId` in `domain`, escrowing `pool`.
    event TaskProposed(
        bytes32 indexed taskId,
        address indexed modeler,
        string name,
        string domain,
        string specCid,
        string dataset,
        uint256 pool
    );
    /// @notice The domain's SubDAO approved task `taskId` for training.
    event TaskApproved(bytes32 indexed taskId);
    /// @notice Task `taskId` was rejected (by its SubDAO, or its approval was defeated); the pool went back.
    event TaskRejected(bytes32 indexed taskId);
    /// @notice The modeler withdrew task `taskId` before its approval; the pool went back.
    event TaskCancelled(bytes32 indexed taskId);
    /// @notice Task `taskId` trained model `modelCid`, reported in `reportCid` with `metrics`.
    event ResultRecorded(bytes32 indexed taskId, string modelCid, string reportCid, Metrics metrics);
    /// @notice The domain's SubDAO accepted model `modelCid` of task `taskId`.
    event ModelAccepted(bytes32 indexed taskId, string modelCid);
    /// @notice Model `modelCid` of task `taskId` was not accepted; the pool went back to the modeler.
    event ModelRejected(bytes32 indexed taskId, string modelCid);
    /// @notice The pool of task `taskId` (`pool`) was paid into the reward distributor.
    event PoolReleased(bytes32 indexed taskId, uint256 pool);

    /// @notice The admin given is the zero address.
    error TaskRegistryInvalidAdmin(address admin);
    /// @notice A token, factory or distributor given is the zero address.
    error TaskRegistryInvalidDependency(address token, address factory, address distributor);
    /// @notice Task `taskId` was never proposed.
    error TaskRegistryUnknownTask(bytes32 taskId);
    /// @notice `domain` has no SubDAO to govern tasks.
    error TaskRegistryUnknownDomain(string domain);
    /// @notice Task `taskId` was already proposed with different content.
    error TaskRegistryTaskConflict(bytes32 taskId);
    /// @notice Task `taskId` already has a different result recorded.
    error TaskRegistryResultConflict(bytes32 taskId);
    /// @notice Task `taskId` is `current`, where the call needs another state.
    error TaskRegistryUnexpectedState(bytes32 taskId, TaskState current);
    /// @notice `caller` may not do this to task `taskId`: only `allowed` may.
    error TaskRegistryUnauthorizedCaller(bytes32 taskId, address caller, address allowed);
    /// @notice Canonical proposal `proposalId` of task `taskId` is `state`: not defeated, expired or canceled.
    error TaskRegistryProposalNotDefeated(bytes32 taskId, uint256 proposalId, IGovernor.ProposalState state);
    /// @notice The pool of task `taskId` was already released; it is paid once.
    error TaskRegistryPoolAlreadyReleased(bytes32 taskId);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE`, `RECORDER_ROLE` and `SETTLER_ROLE`.
     * @param token_ The token pools are escrowed in (FLAI).
     * @param factory_ The SubDAO factory.
     * @param distributor_ The reward distributor released pools fund.
     *
     * Requirements:
     *
     * - none of the addresses is zero.
     */
    constructor(address admin, IERC20 token_, SubDAOFactory factory_, RewardDistributor distributor_) {
        if (admin == address(0)) {
            revert TaskRegistryInvalidAdmin(admin);
        }
        if (address(token_) == address(0) || address(factory_) == address(0) || address(distributor_) == address(0)) {
            revert TaskRegistryInvalidDependency(address(token_), address(factory_), address(distributor_));
        }
        token = token_;
        factory = factory_;
        distributor = distributor_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RECORDER_ROLE, admin);
        _grantRole(SETTLER_ROLE, admin);
    }

    /**
     * @notice Proposes task `taskId` to `domain`'s SubDAO and escrows `pool` of the caller's
     * FLAI as its reward. Proposing the same task again with the same content does nothing.
     *
     * Emits a {TaskProposed} event, unless the task was already proposed with this content.
     *
     * Requirements:
     *
     * - `domain` has a SubDAO.
     * - `taskId` is new, or was proposed by the caller with exactly this content.
     * - the caller has approved this registry for at least `pool`.
     */
    function proposeTask(
        bytes32 taskId,
        string calldata name,
        string calldata domain,
        string calldata specCid,
        string calldata dataset,
        uint256 pool
    ) external {
        Task storage task = _tasks[taskId];
        if (task.state != TaskState.None) {
            if (
                task.modeler == _msgSender() &&
                task.pool == pool &&
                _same(task.name, name) &&
                _same(task.domain, domain) &&
                _same(task.specCid, specCid) &&
                _same(task.dataset, dataset)
            ) {
                return;
            }
            revert TaskRegistryTaskConflict(taskId);
        }
        if (factory.timelockOf(domain) == address(0)) {
            revert TaskRegistryUnknownDomain(domain);
        }
        task.state = TaskState.Proposed;
        task.modeler = _msgSender();
        task.pool = pool;
        task.name = name;
        task.domain = domain;
        task.specCid = specCid;
        task.dataset = dataset;
        _taskIds.push(taskId);
        emit TaskProposed(taskId, _msgSender(), name, domain, specCid, dataset, pool);
        token.safeTransferFrom(_msgSender(), address(this), pool);
    }

    /**
     * @notice Approves task `taskId` for training: the effect of its canonical approval proposal.
     *
     * Emits a {TaskApproved} event.
     *
     * Requirements:
     *
     * - the caller is the timelock of the task's domain.
     * - the task is Proposed.
     */
    function approveTask(bytes32 taskId) external {
        Task storage task = _domainDecision(taskId, TaskState.Proposed);
        task.state = TaskState.Approved;
        task.approvedBlock = uint64(block.number);
        emit TaskApproved(taskId);
    }

    /**
     * @notice Rejects task `taskId` and refunds its pool to the modeler.
     *
     * Emits a {TaskRejected} event.
     *
     * Requirements:
     *
     * - the caller is the timelock of the task's domain.
     * - the task is Proposed.
     */
    function rejectTask(bytes32 taskId) external {
        Task storage task = _domainDecision(taskId, TaskState.Proposed);
        task.state = TaskState.Rejected;
        emit TaskRejected(taskId);
        _refund(task);
    }

    /**
     * @notice Withdraws task `taskId` before its approval and refunds its pool.
     *
     * Emits a {TaskCancelled} event.
     *
     * Requirements:
     *
     * - the caller is the task's modeler.
     * - the task is Proposed.
     */
    function cancelTask(bytes32 taskId) external {
        Task storage task = _taskIn(taskId, TaskState.Proposed);
        if (_msgSender() != task.modeler) {
            revert TaskRegistryUnauthorizedCaller(taskId, _msgSender(), task.modeler);
        }
        task.state = TaskState.Cancelled;
        emit TaskCancelled(taskId);
        _refund(task);
    }

    /**
     * @notice Closes the current stage of task `taskId` whose canonical proposal was
     * defeated, expired or canceled: an unapproved task becomes Rejected, an unaccepted model
     * ModelRejected, and the pool goes back to the modeler. Anyone may call it.
     *
     * Emits a {TaskRejected} or {ModelRejected} event.
     *
     * Requirements:
     *
     * - the task is Proposed or Trained.
     * - the stage's canonical proposal exists at the domain's Governor and is Defeated,
     *   Expired or Canceled.
     */
    function closeDefeated(bytes32 taskId) external {
        Task storage task = _task(taskId);
        bool approving = task.state == TaskState.Proposed;
        if (!approving && task.state != TaskState.Trained) {
            revert TaskRegistryUnexpectedState(taskId, task.state);
        }
        (address governor, ) = factory.subDAO(task.domain);
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas, string memory description) =
            _canonicalProposal(taskId, task, approving);
        uint256 proposalId = IGovernor(governor).hashProposal(targets, values, calldatas, keccak256(bytes(description)));
        IGovernor.ProposalState outcome = IGovernor(governor).state(proposalId);
        if (
            outcome != IGovernor.ProposalState.Defeated &&
            outcome != IGovernor.ProposalState.Expired &&
            outcome != IGovernor.ProposalState.Canceled
        ) {
            revert TaskRegistryProposalNotDefeated(taskId, proposalId, outcome);
        }
        if (approving) {
            task.state = TaskState.Rejected;
            emit TaskRejected(taskId);
        } else {
            task.state = TaskState.ModelRejected;
            emit ModelRejected(taskId, task.modelCid);
        }
        _refund(task);
    }

    /**
     * @notice Records the model task `taskId` trained, its report and its metrics. Recording
     * the same result again does nothing.
     *
     * Emits a {ResultRecorded} event, unless this result was already recorded.
     *
     * Requirements:
     *
     * - the caller has `RECORDER_ROLE`.
     * - the task is Approved, or already has exactly this result.
     */
    function recordResult(
        bytes32 taskId,
        string calldata modelCid,
        string calldata reportCid,
        uint32 accuracyPpm,
        uint32 aucPpm,
        uint32 parityGapPpm,
        uint32 opportunityGapPpm
    ) external onlyRole(RECORDER_ROLE) {
        Task storage task = _task(taskId);
        Metrics memory metrics = Metrics(accuracyPpm, aucPpm, parityGapPpm, opportunityGapPpm);
        if (task.state >= TaskState.Trained) { // every state from Trained on has its result
            if (_same(task.modelCid, modelCid) && _same(task.reportCid, reportCid) && _sameMetrics(task.metrics, metrics)) {
                return;
            }
            revert TaskRegistryResultConflict(taskId);
        }
        if (task.state != TaskState.Approved) {
            revert TaskRegistryUnexpectedState(taskId, task.state);
        }
        task.state = TaskState.Trained;
        task.modelCid = modelCid;
        task.reportCid = reportCid;
        task.metrics = metrics;
        emit ResultRecorded(taskId, modelCid, reportCid, metrics);
    }

    /**
     * @notice Accepts the model of task `taskId`: the effect of its canonical validation proposal.
     *
     * Emits a {ModelAccepted} event.
     *
     * Requirements:
     *
     * - the caller is the timelock of the task's domain.
     * - the task is Trained.
     */
    function acceptModel(bytes32 taskId) external {
        Task storage task = _domainDecision(taskId, TaskState.Trained);
        task.state = TaskState.Accepted;
        task.acceptedBlock = uint64(block.number);
        emit ModelAccepted(taskId, task.modelCid);
    }

    /**
     * @notice Pays the pool of task `taskId` into the reward distributor, once.
     *
     * Emits a {PoolReleased} event (and the distributor's {PoolFunded}).
     *
     * Requirements:
     *
     * - the caller has `SETTLER_ROLE`.
     * - the task is Accepted (a Settled task reverts with {TaskRegistryPoolAlreadyReleased}).
     */
    function releasePool(bytes32 taskId) external onlyRole(SETTLER_ROLE) {
        Task storage task = _task(taskId);
        if (task.state == TaskState.Settled) {
            revert TaskRegistryPoolAlreadyReleased(taskId);
        }
        if (task.state != TaskState.Accepted) {
            revert TaskRegistryUnexpectedState(taskId, task.state);
        }
        task.state = TaskState.Settled;
        uint256 pool = task.pool;
        emit PoolReleased(taskId, pool);
        token.forceApprove(address(distributor), pool);
        distributor.fund(pool);
    }

    /// @notice How many tasks were ever proposed.
    function taskCount() external view returns (uint256) {
        return _taskIds.length;
    }

    /// @notice The id of the `index`-th task proposed (from 0).
    function taskIdAt(uint256 index) external view returns (bytes32) {
        return _taskIds[index];
    }

    /// @notice Everything recorded about task `taskId`.
    function getTask(bytes32 taskId) external view returns (Task memory) {
        return _task(taskId);
    }

    /**
     * @notice The canonical proposal that approves task `taskId`, to pass to the domain
     * Governor's `propose`, `queue` and `execute` (with the description's keccak256 for the
     * last two).
     */
    function approvalProposal(
        bytes32 taskId
    )
        external
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas, string memory description)
    {
        return _canonicalProposal(taskId, _task(taskId), true);
    }

    /// @notice The canonical proposal that accepts the model of task `taskId` (see {approvalProposal}).
    function validationProposal(
        bytes32 taskId
    )
        external
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas, string memory description)
    {
        return _canonicalProposal(taskId, _task(taskId), false);
    }

    function _canonicalProposal(
        bytes32 taskId,
        Task storage task,
        bool approval
    )
        private
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas, string memory description)
    {
        targets = new address[](1);
        targets[0] = address(this);
        values = new uint256[](1);
        calldatas = new bytes[](1);
        if (approval) {
            calldatas[0] = abi.encodeCall(this.approveTask, (taskId));
            description = string.concat("Approve task ", task.name);
        } else {
            calldatas[0] = abi.encodeCall(this.acceptModel, (taskId));
            description = string.concat("Accept model of task ", task.name);
        }
    }

    /// @dev Task `taskId` in state `expected`, when the caller is its domain's timelock.
    function _domainDecision(bytes32 taskId, TaskState expected) private view returns (Task storage task) {
        task = _taskIn(taskId, expected);
        address timelock = factory.timelockOf(task.domain);
        if (_msgSender() != timelock) {
            revert TaskRegistryUnauthorizedCaller(taskId, _msgSender(), timelock);
        }
    }

    function _taskIn(bytes32 taskId, TaskState expected) private view returns (Task storage task) {
        task = _task(taskId);
        if (task.state != expected) {
            revert TaskRegistryUnexpectedState(taskId, task.state);
        }
    }

    function _task(bytes32 taskId) private view returns (Task storage task) {
        task = _tasks[taskId];
        if (task.state == TaskState.None) {
            revert TaskRegistryUnknownTask(taskId);
        }
    }

    function _refund(Task storage task) private {
        token.safeTransfer(task.modeler, task.pool);
    }

    function _same(string storage recorded, string calldata given) private pure returns (bool) {
        return keccak256(bytes(recorded)) == keccak256(bytes(given));
    }

    function _sameMetrics(Metrics storage recorded, Metrics memory given) private view returns (bool) {
        return
            recorded.accuracyPpm == given.accuracyPpm &&
            recorded.aucPpm == given.aucPpm &&
            recorded.parityGapPpm == given.parityGapPpm &&
            recorded.opportunityGapPpm == given.opportunityGapPpm;
    }
}
