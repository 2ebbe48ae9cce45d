"""EIP-712 vouchers: Python signing matches the contract, and every replay is refused."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from payouts import vouchers
from payouts.chain import Deployment
from tests.contracts.conftest import Evm, expect_revert

DEPOSIT = 10_000_000


def _open(evm: Evm, receiver) -> bytes:
    cid, _ = evm.client.open_channel(receiver.address, DEPOSIT)
    return cid


# --------------------------------------------------------- pure Python (no chain)

CHAIN, CONTRACT = 31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
PAYER = Account.from_key("0x" + "22" * 32)
CID = vouchers.channel_id(PAYER.address, "0x" + "ab" * 20)


def test_typed_data_shape() -> None:
    typed = vouchers.voucher_typed_data(CHAIN, CONTRACT.lower(), CID, 1234)
    assert typed == {
        "domain": {
            "name": "OpenChat PaymentChannels",
            "version": "1",
            "chainId": CHAIN,
            "verifyingContract": CONTRACT,
        },
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Voucher": [
                {"name": "channelId", "type": "bytes32"},
                {"name": "cumulativeAmount", "type": "uint256"},
            ],
        },
        "primaryType": "Voucher",
        "message": {"channelId": "0x" + CID.hex(), "cumulativeAmount": 1234},
    }


def test_digest_equals_eth_account_typed_data_hash() -> None:
    typed = vouchers.voucher_typed_data(CHAIN, CONTRACT, CID, 10**18)
    signable = encode_typed_data(full_message=typed)
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert vouchers.voucher_digest(CHAIN, CONTRACT, CID, 10**18) == expected


def test_sign_recover_verify_roundtrip() -> None:
    v = vouchers.sign_voucher(PAYER.key, CHAIN, CONTRACT, CID, 42)
    assert vouchers.recover_signer(v) == PAYER.address
    assert vouchers.verify_voucher(v, PAYER.address)
    assert vouchers.SignedVoucher.from_dict(v.to_dict()) == v
    assert v.to_dict()["cumulativeAmount"] == "42"


@pytest.mark.parametrize(
    "change",
    [
        {"cumulative_amount": 43},
        {"channel_id": b"\x00" * 32},
        {"chain_id": CHAIN + 1},
        {"contract": "0x" + "00" * 19 + "01"},
    ],
)
def test_any_tampered_field_fails_verification(change: dict) -> None:
    v = vouchers.sign_voucher(PAYER.key, CHAIN, CONTRACT, CID, 42)
    assert not vouchers.verify_voucher(dataclasses.replace(v, **change), PAYER.address)


def test_python_refuses_high_s_and_bad_v() -> None:
    v = vouchers.sign_voucher(PAYER.key, CHAIN, CONTRACT, CID, 42)
    assert not vouchers.verify_voucher(
        dataclasses.replace(v, signature=malleate(v.signature)), PAYER.address
    )
    assert not vouchers.verify_voucher(
        dataclasses.replace(v, signature=v.signature[:64] + bytes([v.signature[64] - 27])),
        PAYER.address,
    )
    assert not vouchers.verify_voucher(
        dataclasses.replace(v, signature=v.signature[:64]), PAYER.address
    )


@pytest.mark.parametrize("bad", [1.0, -1, 2**256, True, "7"])
def test_money_must_be_integer_base_units(bad) -> None:
    with pytest.raises(vouchers.InvalidVoucher):
        vouchers.voucher_typed_data(CHAIN, CONTRACT, CID, bad)


def test_from_dict_refuses_non_decimal_amount() -> None:
    d = vouchers.sign_voucher(PAYER.key, CHAIN, CONTRACT, CID, 42).to_dict()
    with pytest.raises(vouchers.InvalidVoucher):
        vouchers.SignedVoucher.from_dict({**d, "cumulativeAmount": "4.2"})


def malleate(signature: bytes) -> bytes:
    """The high-s twin of a signature: (r, N - s, v ^ 1) recovers the same key."""
    v, r, s = vouchers.split_signature(signature)
    twin_s = vouchers.SECP256K1_N - s
    twin_v = 28 if v == 27 else 27
    return r.to_bytes(32, "big") + twin_s.to_bytes(32, "big") + bytes([twin_v])


# ---------------------------------------------------------------- on chain


def test_python_signed_voucher_is_accepted_on_chain(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = _open(evm, r)
    voucher = vouchers.sign_voucher(
        evm.hub.key, evm.client.chain_id, evm.deployment.channels, cid, 777
    )
    evm.client.claim(voucher, r)
    assert evm.client.token_balance(r.address) == 777


@pytest.mark.parametrize("what", ["amount", "signature-byte", "signature-length", "v"])
def test_tampered_voucher_is_refused_on_chain(evm: Evm, what: str) -> None:
    r = evm.receivers[0]
    cid = _open(evm, r)
    v = evm.client.sign_voucher(cid, 1_000)
    sig = v.signature
    tampered = {
        "amount": dataclasses.replace(v, cumulative_amount=1_001),
        "signature-byte": dataclasses.replace(
            v, signature=sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]
        ),
        "signature-length": dataclasses.replace(v, signature=sig[:64]),
        "v": dataclasses.replace(v, signature=sig[:64] + bytes([sig[64] - 27])),
    }[what]
    err = expect_revert("InvalidSignature", evm.client.claim, tampered, r)
    assert err.args_dict["channelId"] == cid
    evm.client.claim(v, r)  # the genuine one still works
    assert evm.client.token_balance(r.address) == 1_000


def test_malleable_high_s_signature_is_refused_on_chain(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = _open(evm, r)
    v = evm.client.sign_voucher(cid, 500)
    twin = dataclasses.replace(v, signature=malleate(v.signature))
    # the twin is a real signature of the payer: the EVM's ecrecover precompile accepts it ...
    tv, tr, ts = vouchers.split_signature(twin.signature)
    data = v.digest() + tv.to_bytes(32, "big") + tr.to_bytes(32, "big") + ts.to_bytes(32, "big")
    recovered = evm.w3.eth.call({"to": "0x" + "00" * 19 + "01", "data": data})
    assert to_checksum_address(recovered[-20:]) == evm.hub.address
    # ... but the contract refuses it (OpenZeppelin ECDSA: s must be in the lower half)
    expect_revert("InvalidSignature", evm.client.claim, twin, r)
    evm.client.claim(v, r)


def test_signature_by_anyone_but_the_payer_is_refused(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = _open(evm, r)
    for signer in (r, evm.outsider, Account.create()):
        forged = vouchers.sign_voucher(
            signer.key, evm.client.chain_id, evm.deployment.channels, cid, 100
        )
        expect_revert("InvalidSignature", evm.client.claim, forged, r)
    assert evm.client.token_balance(r.address) == 0


def test_voucher_for_channel_a_is_refused_on_channel_b(evm: Evm) -> None:
    ra, rb = evm.receivers[:2]
    ca, cb = _open(evm, ra), _open(evm, rb)
    va = evm.client.sign_voucher(ca, 2_000)
    # B's receiver submits A's voucher (same payer, same amount) against channel B
    moved = dataclasses.replace(va, channel_id=cb)
    expect_revert("InvalidSignature", evm.client.claim, moved, rb)
    # and cannot submit it on channel A either: only A's receiver may claim A
    expect_revert("NotReceiver", evm.client.claim, va, rb)
    assert evm.client.token_balance(rb.address) == 0


def test_voucher_is_refused_by_another_deployed_contract(evm: Evm) -> None:
    """A second PaymentChannels with the same token, payer, receiver — hence the very same
    channel id — refuses the first contract's voucher: the domain binds the contract address."""
    r = evm.receivers[0]
    other_address = evm.deploy("PaymentChannels", evm.deployment.token, 60)
    other = evm.client_for(Deployment(**{**evm.deployment.__dict__, "channels": other_address}))
    evm.client.approve(2**256 - 1, spender=other_address)
    cid_here = _open(evm, r)
    cid_there, _ = other.open_channel(r.address, DEPOSIT)
    assert cid_here == cid_there
    voucher_here = evm.client.sign_voucher(cid_here, 300)
    replayed = dataclasses.replace(voucher_here, contract=other_address)  # what is submitted
    expect_revert("InvalidSignature", other.claim, replayed, r)
    other.claim(other.sign_voucher(cid_there, 300), r)  # its own voucher works
    assert evm.client.token_balance(r.address) == 300


def test_voucher_for_another_chain_id_is_refused(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = _open(evm, r)
    foreign = vouchers.sign_voucher(
        evm.hub.key, evm.client.chain_id + 1, evm.deployment.channels, cid, 100
    )
    expect_revert("InvalidSignature", evm.client.claim, foreign, r)
    for chain_id in (1, 31337, 8453):
        foreign = vouchers.sign_voucher(evm.hub.key, chain_id, evm.deployment.channels, cid, 100)
        expect_revert("InvalidSignature", evm.client.claim, foreign, r)


def test_older_vouchers_are_worth_nothing_after_a_newer_one(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = _open(evm, r)
    signed = [evm.client.sign_voucher(cid, amount) for amount in (100, 250, 600)]
    evm.client.claim(signed[2], r)
    for old in signed[:2]:
        expect_revert("NothingToClaim", evm.client.claim, old, r)
    assert evm.client.token_balance(r.address) == 600


def test_wallet_typed_data_signature_is_accepted(evm: Evm) -> None:
    """What a wallet does with the served typed data (eth_signTypedData_v4) is what claim takes."""
    r = evm.receivers[0]
    cid = _open(evm, r)
    typed = evm.client.voucher_typed_data(cid, 321)
    sig = Account.sign_message(encode_typed_data(full_message=typed), evm.hub.key).signature
    voucher = vouchers.SignedVoucher(
        evm.client.chain_id, evm.deployment.channels, cid, 321, bytes(sig)
    )
    evm.client.claim(voucher, r)
    assert evm.client.token_balance(r.address) == 321
