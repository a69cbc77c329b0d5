// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";

/**
 * @title RewardDistributor
 * @notice Pays each epoch's rewards through one Merkle root: the settler posts the root and
 * the epoch's total, every provider then claims its own amount with a proof.
 *
 * Posting costs the same whatever the number of providers; each claim pays its own gas. The
 * tree is a `StandardMerkleTree` of OpenZeppelin's JavaScript library over the leaves
 * `(uint256 epoch, uint256 index, address account, uint256 amount)`: a leaf is
 * `keccak256(bytes.concat(keccak256(abi.encode(epoch, index, account, amount))))`. The epoch
 * inside the leaf is what keeps a proof of one epoch from paying in another.
 *
 * The pool is what was paid in through {fund}, less the totals of posted epochs: posting an
 * epoch reserves its total, so every posted epoch can be claimed in full whatever is posted
 * later. Tokens sent with a plain transfer are not counted. That the tree's amounts sum to
 * the posted total is the settler's word, as the tree itself is: checking it per claim would
 * cost every claim another storage write (about 5k gas).
 *
 * An epoch has one root for good: posting the same root and total again changes nothing (a
 * retried settlement is safe), posting anything else for it reverts (a re-run settlement
 * cannot pay an epoch twice).
 *
 * Roles: `SETTLER_ROLE` posts roots (the settlement flow's account). Anyone may fund the
 * pool, and anyone may submit a claim: the amount always goes to the leaf's account.
 */
contract RewardDistributor is AccessControl {
    using BitMaps for BitMaps.BitMap;
    using SafeERC20 for IERC20;

    /// @notice Role allowed to post epoch roots.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    struct Epoch {
        bytes32 root;
        uint256 total;
    }

    /// @notice The token rewards are paid in (FLAI).
    IERC20 public immutable token;

    uint256 private _funded;
    uint256 private _reserved;
    mapping(uint256 epoch => Epoch) private _epochs;
    mapping(uint256 epoch => BitMaps.BitMap) private _claimedIndices;

    /// @notice `funder` paid `amount` into the pool.
    event PoolFunded(address indexed funder, uint256 amount);
    /// @notice Epoch `epoch` was posted with Merkle root `root`, reserving `total` of the pool.
    event EpochPosted(uint256 indexed epoch, bytes32 root, uint256 total);
    /// @notice Leaf `index` of epoch `epoch` paid `amount` to `account`.
    event Claimed(uint256 indexed epoch, uint256 indexed index, address indexed account, uint256 amount);

    /// @notice The admin given is the zero address.
    error RewardDistributorInvalidAdmin(address admin);
    /// @notice The token given is the zero address.
    error RewardDistributorInvalidToken(address token);
    /// @notice The zero root cannot be posted: it marks an epoch that was not posted.
    error RewardDistributorInvalidRoot(uint256 epoch);
    /// @notice Epoch `epoch` already has root `root` and total `total`; it cannot get another.
    error RewardDistributorEpochAlreadyPosted(uint256 epoch, bytes32 root, uint256 total);
    /// @notice Posting epoch `epoch` needs `total`, but only `available` of the pool is unreserved.
    error RewardDistributorInsufficientPool(uint256 epoch, uint256 total, uint256 available);
    /// @notice No root was posted for epoch `epoch`.
    error RewardDistributorUnknownEpoch(uint256 epoch);
    /// @notice Leaf `index` of epoch `epoch` has already been paid.
    error RewardDistributorAlreadyClaimed(uint256 epoch, uint256 index);
    /// @notice The proof does not place `(epoch, index, account, amount)` under the epoch's root.
    error RewardDistributorInvalidProof(uint256 epoch, uint256 index, address account, uint256 amount);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE` and `SETTLER_ROLE`.
     * @param rewardToken The token rewards are paid in.
     *
     * Requirements:
     *
     * - neither `admin` nor `rewardToken` is the zero address.
     */
    constructor(address admin, IERC20 rewardToken) {
        if (admin == address(0)) {
            revert RewardDistributorInvalidAdmin(admin);
        }
        if (address(rewardToken) == address(0)) {
            revert RewardDistributorInvalidToken(address(rewardToken));
        }
        token = rewardToken;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SETTLER_ROLE, admin);
    }

    /**
     * @notice Pays `amount` tokens from the caller into the pool.
     *
     * Emits a {PoolFunded} event.
     *
     * Requirements:
     *
     * - the caller has approved this contract for at least `amount`.
     */
    function fund(uint256 amount) external {
        _funded += amount;
        emit PoolFunded(_msgSender(), amount);
        token.safeTransferFrom(_msgSender(), address(this), amount);
    }

    /**
     * @notice Posts the Merkle root of epoch `epoch`, whose leaves sum to `total`, and
     * reserves `total` of the pool for its claims. Posting the same root and total again
     * does nothing.
     *
     * Emits an {EpochPosted} event, unless the epoch was already posted with this root and total.
     *
     * Requirements:
     *
     * - the caller has `SETTLER_ROLE`.
     * - `root` is not zero.
     * - the epoch has no root yet, or exactly this root and total.
     * - the unreserved pool ({available}) holds at least `total`.
     */
    function postEpochRoot(uint256 epoch, bytes32 root, uint256 total) external onlyRole(SETTLER_ROLE) {
        if (root == bytes32(0)) {
            revert RewardDistributorInvalidRoot(epoch);
        }
        Epoch storage posted = _epochs[epoch];
        if (posted.root != bytes32(0)) {
            if (posted.root == root && posted.total == total) {
                return;
            }
            revert RewardDistributorEpochAlreadyPosted(epoch, posted.root, posted.total);
        }
        uint256 unreserved = available();
        if (total > unreserved) {
            revert RewardDistributorInsufficientPool(epoch, total, unreserved);
        }
        _reserved += total;
        posted.root = root;
        posted.total = total;
        emit EpochPosted(epoch, root, total);
    }

    /**
     * @notice Pays `amount` to `account` for leaf `index` of epoch `epoch`. Anyone may
     * submit the claim; the tokens go to `account`.
     *
     * Emits a {Claimed} event.
     *
     * Requirements:
     *
     * - the epoch was posted.
     * - leaf `index` of the epoch was not claimed yet.
     * - `proof` proves the leaf `(epoch, index, account, amount)` against the epoch's root.
     */
    function claim(
        uint256 epoch,
        uint256 index,
        address account,
        uint256 amount,
        bytes32[] calldata proof
    ) external {
        bytes32 root = _epochs[epoch].root;
        if (root == bytes32(0)) {
            revert RewardDistributorUnknownEpoch(epoch);
        }
        if (_claimedIndices[epoch].get(index)) {
            revert RewardDistributorAlreadyClaimed(epoch, index);
        }
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(epoch, index, account, amount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) {
            revert RewardDistributorInvalidProof(epoch, index, account, amount);
        }
        _claimedIndices[epoch].set(index);
        emit Claimed(epoch, index, account, amount);
        token.safeTransfer(account, amount);
    }

    /// @notice The Merkle root of epoch `epoch`, or zero if it was not posted.
    function epochRoot(uint256 epoch) external view returns (bytes32) {
        return _epochs[epoch].root;
    }

    /// @notice Whether leaf `index` of epoch `epoch` has been paid.
    function isClaimed(uint256 epoch, uint256 index) external view returns (bool) {
        return _claimedIndices[epoch].get(index);
    }

    /// @notice What was funded and is not reserved by a posted epoch: the most the next epoch may total.
    function available() public view returns (uint256) {
        return _funded - _reserved;
    }
}
