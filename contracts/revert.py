"""Decode a revert into the Solidity error that caused it.

The two kinds of node hand the revert data over differently: a JSON-RPC node (anvil, geth)
returns it as hex in the error's ``data``, which web3 puts on
:class:`~web3.exceptions.ContractLogicError`; the embedded py-evm chain raises
``eth_tester``'s ``TransactionFailed`` whose message holds the bytes' ``repr``
(``execution reverted: b'...'``), which :func:`ast.literal_eval` reads back safely (web3's
own eth-tester provider does the same for panics). The data is then matched by selector
against every error in the FLAI ABIs.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import cache
from typing import Any

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_tester.exceptions import TransactionFailed
from eth_utils import (
    abi_to_signature,
    function_signature_to_4byte_selector,
    get_abi_input_names,
    get_abi_input_types,
    to_checksum_address,
)
from web3.exceptions import ContractLogicError

from contracts.compiled import ChainContract, compiled
from contracts.errors import REVERT_KINDS, LedgerRevertError

_REVERTED = "execution reverted: "
_BUILTIN_ERRORS = (
    {"type": "error", "name": "Error", "inputs": [{"name": "reason", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
)


def revert_error(contract: ChainContract, function: str, exc: Exception) -> LedgerRevertError | None:
    """The typed error for a revert raised by web3 or eth-tester, or None if ``exc`` is no revert."""
    if isinstance(exc, ContractLogicError):
        data: bytes | str | None = _hex_or_message(exc.data, exc.message)
    elif isinstance(exc, TransactionFailed):
        data = _tester_data(str(exc.args[0]) if exc.args else "")
    else:
        return None
    if isinstance(data, str):  # the node decoded a reason string and kept only that
        name, arguments = "Error", {"reason": data}
    else:
        name, arguments = decode_revert(data or b"")
    kind = REVERT_KINDS.get(name, LedgerRevertError)
    return kind(contract.value, function, name, arguments)


def decode_revert(data: bytes) -> tuple[str, Mapping[str, Any]]:
    """The error name and its arguments by name, for ABI-encoded revert data.

    >>> decode_revert(bytes.fromhex("17d4b317" + "01" * 32 + "00" * 31 + "05"))[0]
    'LineageRegistryUnknownRound'
    >>> decode_revert(b"")
    ('(no data)', {})
    """
    if len(data) < 4:
        return "(no data)", {"data": data} if data else {}
    entry = _errors_by_selector().get(data[:4])
    if entry is None:
        return "(unknown error)", {"data": data}
    types = get_abi_input_types(entry)
    try:
        values = decode(types, data[4:])
    except DecodingError:
        return entry["name"], {"data": data}
    names = [name or f"arg{i}" for i, name in enumerate(get_abi_input_names(entry))]
    values = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)]
    return entry["name"], dict(zip(names, values, strict=True))


@cache
def _errors_by_selector() -> Mapping[bytes, Mapping[str, Any]]:
    entries = [
        entry for contract in ChainContract for entry in compiled(contract).abi if entry["type"] == "error"
    ]
    return {
        function_signature_to_4byte_selector(abi_to_signature(entry)): entry
        for entry in (*entries, *_BUILTIN_ERRORS)
    }


def _hex_or_message(data: object, message: str | None) -> bytes | str | None:
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            pass
    return message


def _tester_data(message: str) -> bytes | str:
    text = message.removeprefix(_REVERTED)
    if text.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, bytes):
            return value
    return text
