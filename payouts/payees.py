"""Payees that can never be paid: which addresses, and why (pure, no chain access).

A payout goes through ``PaymentChannels``: the hub opens a channel to the payee and pays it in
the token. Some addresses can never take part in that: the contract refuses the zero address
and the payer itself, and tokens sent to a contract of the deployment or to a precompile are
out of everyone's reach. Intake refuses them (so nothing is credited to them), and the payout
runs quarantine a payee that is one anyway (credited before the check existed) without sending
a transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_utils import is_hex_address

ZERO_ADDRESS = "0x" + "00" * 20

# Precompiled contracts (code-less addresses the EVM answers itself); a token balance there can
# never be moved. 0x01-0x0a up to Cancun, 0x0b-0x11 the BLS12-381 operations (Prague, EIP-2537),
# 0x100 P256VERIFY (RIP-7212 on L2s, EIP-7951 on mainnet). Keys are lower-case.
PRECOMPILES: dict[str, str] = {
    f"0x{n:040x}": name
    for n, name in {
        0x01: "ecRecover", 0x02: "SHA2-256", 0x03: "RIPEMD-160", 0x04: "identity", 0x05: "modexp",
        0x06: "ecAdd", 0x07: "ecMul", 0x08: "ecPairing", 0x09: "blake2f", 0x0A: "point evaluation",
        0x0B: "BLS12_G1ADD", 0x0C: "BLS12_G1MSM", 0x0D: "BLS12_G2ADD", 0x0E: "BLS12_G2MSM",
        0x0F: "BLS12_PAIRING_CHECK", 0x10: "BLS12_MAP_FP_TO_G1", 0x11: "BLS12_MAP_FP2_TO_G2",
        0x100: "P256VERIFY",
    }.items()
}

# What each role of a deployment (``Deployment.addresses()``) is, for the error message.
_ROLES = {
    "hub": "the hub's own address (the payer of every channel; a channel to itself is refused)",
    "payer": "the hub's own address (the payer of every channel; a channel to itself is refused)",
    "token": "the payment token's contract (tokens sent there are stuck for good)",
    "channels": "the PaymentChannels contract (tokens sent there are stuck for good)",
    "registry": "the ContributionRegistry contract (tokens sent there are stuck for good)",
}


def unpayable_reason(address: str, deployment: Mapping[str, str]) -> tuple[str, str] | None:
    """Why ``address`` can never be paid, as (code, sentence), or None when it can.

    ``deployment`` maps roles (``hub``, ``payer``, ``token``, ``channels``, ``registry``, or
    any other contract of the deployment) to their addresses; an address that is malformed
    raises ValueError (check the format first)."""
    if not is_hex_address(address):
        raise ValueError(f"not an Ethereum address: {address!r}")
    key = address.lower()  # compared case-blind: no checksum hashing per payee and run
    if key == ZERO_ADDRESS:
        return "zero_address", "the zero address (nobody holds its key; the channel contract refuses it)"
    for role, other in deployment.items():
        if other and other.lower() == key:
            code = "hub_address" if role in ("hub", "payer") else "contract_address"
            return code, _ROLES.get(role, f"the deployment's {role} contract (tokens sent there are stuck for good)")
    name = PRECOMPILES.get(key)
    if name is not None:
        return "precompile_address", f"the {name} precompile (tokens sent there are stuck for good)"
    return None
