// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/**
 * @title FLAIToken
 * @notice The FLAI reward and governance token.
 *
 * Contributors are paid in FLAI; holders govern. The token keeps vote checkpoints
 * ({ERC20Votes}, block-number clock) so that a Governor (token-weighted or quadratic, where
 * the Governor takes the square root of {getPastVotes}) can be deployed later and read past
 * voting power without a new token. {ERC20Permit} lets an inference market or a reward
 * distributor move tokens with one signed approval.
 *
 * Minting is the only privileged action and belongs to `MINTER_ROLE`: grant it to a reward
 * distributor or a DAO timelock when they exist, and revoke it from the deployer.
 */
contract FLAIToken is ERC20, ERC20Permit, ERC20Votes, AccessControl {
    /// @notice Role allowed to create new tokens.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice The admin given is the zero address.
    error FLAITokenInvalidAdmin(address admin);

    /**
     * @param admin Account that receives `DEFAULT_ADMIN_ROLE` and `MINTER_ROLE`.
     *
     * Requirements:
     *
     * - `admin` is not the zero address.
     */
    constructor(address admin) ERC20("FLAI", "FLAI") ERC20Permit("FLAI") {
        if (admin == address(0)) {
            revert FLAITokenInvalidAdmin(admin);
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /**
     * @notice Creates `amount` tokens for `to`.
     *
     * Emits a {Transfer} event from the zero address.
     *
     * Requirements:
     *
     * - the caller has `MINTER_ROLE`.
     * - `to` is not the zero address.
     */
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @inheritdoc ERC20
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    /// @inheritdoc Nonces
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
