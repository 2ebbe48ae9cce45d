"""Contributor payout addresses (EIP-55)."""

from __future__ import annotations

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address


class AddressError(ValueError):
    pass


def checksum_address(value: str) -> str:
    """The EIP-55 form of an address; all-lower/upper-case input is accepted, a wrong checksum is not."""
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or not is_hex_address(value):
        raise AddressError(f"{value!r} is not an Ethereum address (0x followed by 40 hex digits)")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise AddressError(f"{value!r} has a wrong EIP-55 checksum (mixed case that does not match)")
    return to_checksum_address(value)
