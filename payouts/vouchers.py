"""EIP-712 payment-channel vouchers: the exact typed data `PaymentChannels.claim` checks.

Pure functions over plain data (no chain access). A voucher says "the payer owes the receiver
of channel ``channel_id`` a cumulative ``cumulative_amount`` base units"; it is bound to the
chain id, the PaymentChannels contract address and the channel id through the EIP-712 domain
and struct, so it cannot be replayed on another chain, contract or channel, and because the
amount is cumulative an older voucher is worth nothing new.

Money is integer base units everywhere; a float is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "OpenChat PaymentChannels"
DOMAIN_VERSION = "1"
PRIMARY_TYPE = "Voucher"

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
VOUCHER_TYPE = [
    {"name": "channelId", "type": "bytes32"},
    {"name": "cumulativeAmount", "type": "uint256"},
]
VOUCHER_TYPEHASH = keccak(text="Voucher(bytes32 channelId,uint256 cumulativeAmount)")

# secp256k1 group order; a signature with s > N/2 is the malleable twin of a valid one.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
UINT256_MAX = 2**256 - 1


class InvalidVoucher(ValueError):
    """A voucher or one of its fields is malformed."""


def _check_amount(value: int) -> int:
    # bool is an int subclass; a float is never money.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidVoucher(f"cumulative amount must be an integer of base units, got {value!r}")
    if not 0 <= value <= UINT256_MAX:
        raise InvalidVoucher(f"cumulative amount out of uint256 range: {value}")
    return value


def _bytes32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InvalidVoucher(f"expected 32 bytes, got {len(raw)}")
    return raw


def channel_id(payer: str, receiver: str) -> bytes:
    """The channel id the contract uses: ``keccak256(abi.encode(payer, receiver))``."""
    return keccak(
        abi_encode(
            ["address", "address"], [to_checksum_address(payer), to_checksum_address(receiver)]
        )
    )


def voucher_typed_data(
    chain_id: int, contract: str, channel: bytes | str, cumulative_amount: int
) -> dict[str, Any]:
    """The full EIP-712 typed data ``{domain, types, primaryType, message}`` of a voucher.

    This is what a wallet shows and what ``eth_signTypedData_v4`` signs. ``channelId`` is a
    0x-hex string, ``cumulativeAmount`` an int (serialise it as a decimal string for
    JavaScript clients if it may exceed 2**53).
    """
    return {
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": int(chain_id),
            "verifyingContract": to_checksum_address(contract),
        },
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, PRIMARY_TYPE: VOUCHER_TYPE},
        "primaryType": PRIMARY_TYPE,
        "message": {
            "channelId": "0x" + _bytes32(channel).hex(),
            "cumulativeAmount": _check_amount(cumulative_amount),
        },
    }


def domain_separator(chain_id: int, contract: str) -> bytes:
    """``PaymentChannels.domainSeparator()`` computed off chain."""
    domain_typehash = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                domain_typehash,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                int(chain_id),
                to_checksum_address(contract),
            ],
        )
    )


def voucher_digest(
    chain_id: int, contract: str, channel: bytes | str, cumulative_amount: int
) -> bytes:
    """The 32-byte digest that is signed (``PaymentChannels.voucherDigest``)."""
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes32", "uint256"],
            [VOUCHER_TYPEHASH, _bytes32(channel), _check_amount(cumulative_amount)],
        )
    )
    return keccak(b"\x19\x01" + domain_separator(chain_id, contract) + struct_hash)


@dataclass(frozen=True)
class SignedVoucher:
    """A voucher with the payer's 65-byte ``r || s || v`` signature, ready for ``claim``."""

    chain_id: int
    contract: str
    channel_id: bytes
    cumulative_amount: int
    signature: bytes

    def typed_data(self) -> dict[str, Any]:
        return voucher_typed_data(
            self.chain_id, self.contract, self.channel_id, self.cumulative_amount
        )

    def digest(self) -> bytes:
        return voucher_digest(self.chain_id, self.contract, self.channel_id, self.cumulative_amount)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (amount as a decimal string, bytes as 0x-hex)."""
        return {
            "chainId": self.chain_id,
            "contract": self.contract,
            "channelId": "0x" + self.channel_id.hex(),
            "cumulativeAmount": str(self.cumulative_amount),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedVoucher:
        amount = data["cumulativeAmount"]
        if isinstance(amount, str):
            if not amount.isdigit():
                raise InvalidVoucher(f"cumulativeAmount must be a decimal integer, got {amount!r}")
            amount = int(amount)
        return cls(
            chain_id=int(data["chainId"]),
            contract=to_checksum_address(data["contract"]),
            channel_id=_bytes32(data["channelId"]),
            cumulative_amount=_check_amount(amount),
            signature=bytes.fromhex(str(data["signature"]).removeprefix("0x")),
        )


def sign_voucher(
    private_key: bytes | str,
    chain_id: int,
    contract: str,
    channel: bytes | str,
    cumulative_amount: int,
) -> SignedVoucher:
    """Sign a voucher with eth-account's EIP-712 signer (always produces low-s signatures)."""
    typed = voucher_typed_data(chain_id, contract, channel, cumulative_amount)
    signed = Account.sign_typed_data(private_key, full_message=typed)
    return SignedVoucher(
        chain_id=int(chain_id),
        contract=to_checksum_address(contract),
        channel_id=_bytes32(channel),
        cumulative_amount=cumulative_amount,
        signature=bytes(signed.signature),
    )


def split_signature(signature: bytes) -> tuple[int, int, int]:
    """``(v, r, s)`` of a 65-byte ``r || s || v`` signature."""
    if len(signature) != 65:
        raise InvalidVoucher(f"signature must be 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return signature[64], r, s


def recover_signer(voucher: SignedVoucher) -> str:
    """The address that signed the voucher, applying the same rules as OpenZeppelin's ECDSA:
    65 bytes, v in {27, 28}, 0 < r, 0 < s <= N/2 (no malleable high-s twin)."""
    v, r, s = split_signature(voucher.signature)
    if v not in (27, 28):
        raise InvalidVoucher(f"signature v must be 27 or 28, got {v}")
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N):
        raise InvalidVoucher("signature r/s out of range (malleable high-s signatures are refused)")
    sig = keys.Signature(vrs=(v - 27, r, s))
    return sig.recover_public_key_from_msg_hash(voucher.digest()).to_checksum_address()


def verify_voucher(voucher: SignedVoucher, payer: str) -> bool:
    """True iff ``payer`` signed exactly this voucher (chain, contract, channel, amount)."""
    try:
        return recover_signer(voucher) == to_checksum_address(payer)
    except (InvalidVoucher, ValueError):
        return False


def encode_for_wallet(typed: dict[str, Any]) -> Any:
    """The eth-account SignableMessage of typed data (as a wallet would hash it)."""
    return encode_typed_data(full_message=typed)
