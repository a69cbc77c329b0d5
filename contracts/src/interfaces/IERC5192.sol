// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IERC5192
 * @notice Minimal soul-bound NFTs (ERC-5192). The interface id is `0xb45a3c0e`.
 */
interface IERC5192 {
    /// @notice Emitted when the locking status of `tokenId` becomes locked.
    event Locked(uint256 tokenId);

    /// @notice Emitted when the locking status of `tokenId` becomes unlocked.
    event Unlocked(uint256 tokenId);

    /// @notice Whether `tokenId` is locked (cannot be transferred). Reverts for a token that does not exist.
    function locked(uint256 tokenId) external view returns (bool);
}
