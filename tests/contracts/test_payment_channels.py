"""PaymentChannels on py-evm: every function's success path and every custom error."""

from __future__ import annotations

import pytest
from eth_utils import keccak, to_checksum_address

from payouts import vouchers
from payouts.chain import ChainError, ContractRevert
from tests.contracts.conftest import CHALLENGE_PERIOD, Evm, expect_revert

DEPOSIT = 5_000_000  # 5 ocUSD


def open_channel(evm: Evm, receiver, deposit: int = DEPOSIT) -> bytes:
    cid, _ = evm.client.open_channel(receiver.address, deposit)
    return cid


def balances(evm: Evm, *addresses: str) -> list[int]:
    return [evm.client.token_balance(a) for a in addresses]


# ------------------------------------------------------------------ constructor


def test_constructor_sets_token_and_challenge_period(evm: Evm) -> None:
    c = evm.client.channels.functions
    assert c.token().call() == evm.deployment.token
    assert c.challengePeriod().call() == CHALLENGE_PERIOD
    assert c.VOUCHER_TYPEHASH().call() == vouchers.VOUCHER_TYPEHASH


def test_constructor_refuses_zero_token(evm: Evm) -> None:
    expect_revert("ZeroAddress", evm.deploy, "PaymentChannels", "0x" + "00" * 20, 60)


def test_constructor_refuses_zero_challenge_period(evm: Evm) -> None:
    expect_revert("ZeroChallengePeriod", evm.deploy, "PaymentChannels", evm.deployment.token, 0)


# ------------------------------------------------------------------------ open


def test_open_pulls_deposit_and_records_channel(evm: Evm) -> None:
    r = evm.receivers[0]
    hub_before, contract_before = balances(evm, evm.hub.address, evm.deployment.channels)
    cid, receipt = evm.client.open_channel(r.address, DEPOSIT)
    assert cid == vouchers.channel_id(evm.hub.address, r.address)
    assert cid == evm.client.channels.functions.channelIdOf(evm.hub.address, r.address).call()
    state = evm.client.get_channel(cid)
    assert (state.payer, state.receiver, state.deposited, state.paid) == (
        evm.hub.address,
        r.address,
        DEPOSIT,
        0,
    )
    assert state.status == "open" and state.closes_at == 0 and not state.settled
    assert balances(evm, evm.hub.address, evm.deployment.channels) == [
        hub_before - DEPOSIT,
        contract_before + DEPOSIT,
    ]
    [event] = evm.client.channel_events(receipt)
    assert event == {
        "event": "ChannelOpened",
        "channelId": cid,
        "payer": evm.hub.address,
        "receiver": r.address,
        "amount": DEPOSIT,
        "deposited": DEPOSIT,
    }


@pytest.mark.parametrize("who", ["zero", "self"])
def test_open_refuses_invalid_receiver(evm: Evm, who: str) -> None:
    receiver = "0x" + "00" * 20 if who == "zero" else evm.hub.address
    err = expect_revert("InvalidReceiver", evm.client.open_channel, receiver, DEPOSIT)
    assert err.args_dict["receiver"] == to_checksum_address(receiver)


def test_open_refuses_zero_deposit(evm: Evm) -> None:
    expect_revert("ZeroAmount", evm.client.open_channel, evm.receivers[0].address, 0)


def test_open_refuses_existing_channel(evm: Evm) -> None:
    cid = open_channel(evm, evm.receivers[0])
    err = expect_revert("ChannelExists", evm.client.open_channel, evm.receivers[0].address, 1)
    assert err.args_dict["channelId"] == cid
    evm.client.close_channel(cid)  # closing is not settled: still refused
    expect_revert("ChannelExists", evm.client.open_channel, evm.receivers[0].address, 1)


def test_open_without_allowance_fails_in_the_token(evm: Evm) -> None:
    payer = evm.new_account()
    evm.client.transfer(payer.address, DEPOSIT)
    expect_revert(
        "ERC20InsufficientAllowance",
        evm.client.open_channel,
        evm.receivers[0].address,
        DEPOSIT,
        account=payer,
    )


def test_reopen_after_settle_keeps_cumulative_paid(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    evm.client.push_payments([(r.address, 400)])
    evm.client.close_channel(cid)
    evm.advance(CHALLENGE_PERIOD)
    evm.client.settle(cid)
    cid2, receipt = evm.client.open_channel(r.address, 2_000)
    assert cid2 == cid
    state = evm.client.get_channel(cid)
    assert (state.deposited, state.paid, state.status) == (400 + 2_000, 400, "open")
    assert evm.client.channel_events(receipt)[0]["deposited"] == 2_400
    # an old voucher for 400 is worth nothing; the next cumulative amount pays the difference
    expect_revert("NothingToClaim", evm.client.claim, evm.client.sign_voucher(cid, 400), r)
    evm.client.claim(evm.client.sign_voucher(cid, 1_000), r)
    assert evm.client.get_channel(cid).paid == 1_000


def test_channels_are_per_payer(evm: Evm) -> None:
    """Another payer's channel to the same receiver is a different channel."""
    other = evm.new_account()
    evm.client.transfer(other.address, DEPOSIT)
    evm.client.approve(DEPOSIT, account=other)
    mine = open_channel(evm, evm.receivers[0])
    theirs, _ = evm.client.open_channel(evm.receivers[0].address, DEPOSIT, account=other)
    assert mine != theirs
    assert evm.client.get_channel(theirs).payer == other.address


# ---------------------------------------------------------------------- top up


def test_top_up_adds_to_deposit(evm: Evm) -> None:
    cid = open_channel(evm, evm.receivers[0])
    receipt = evm.client.top_up(cid, 7)
    assert evm.client.get_channel(cid).deposited == DEPOSIT + 7
    assert evm.client.channel_events(receipt) == [
        {"event": "ChannelToppedUp", "channelId": cid, "amount": 7, "deposited": DEPOSIT + 7}
    ]


def test_top_up_errors(evm: Evm) -> None:
    cid = open_channel(evm, evm.receivers[0])
    expect_revert("ZeroAmount", evm.client.top_up, cid, 0)
    expect_revert("UnknownChannel", evm.client.top_up, b"\x01" * 32, 1)
    err = expect_revert("NotPayer", evm.client.top_up, cid, 1, account=evm.receivers[0])
    assert err.args_dict["caller"] == evm.receivers[0].address
    evm.client.close_channel(cid)
    expect_revert("ChannelNotOpen", evm.client.top_up, cid, 1)


# ---------------------------------------------------------------- push payments


def test_push_pays_many_channels_in_one_transaction(evm: Evm) -> None:
    rs = evm.receivers[:4]
    cids = [open_channel(evm, r) for r in rs]
    before = balances(evm, *(r.address for r in rs))
    receipt = evm.client.push_payments([(r.address, 100 * (i + 1)) for i, r in enumerate(rs)])
    after = balances(evm, *(r.address for r in rs))
    assert [a - b for a, b in zip(after, before, strict=True)] == [100, 200, 300, 400]
    assert [evm.client.get_channel(c).paid for c in cids] == [100, 200, 300, 400]
    events = evm.client.channel_events(receipt)
    assert [(e["event"], e["channelId"], e["amount"], e["paid"]) for e in events] == [
        ("ChannelPushed", c, 100 * (i + 1), 100 * (i + 1)) for i, c in enumerate(cids)
    ]


def test_push_is_idempotent_and_pays_only_the_difference(evm: Evm) -> None:
    r1, r2 = evm.receivers[:2]
    c1, c2 = open_channel(evm, r1), open_channel(evm, r2)
    evm.client.push_payments([(r1.address, 300), (r2.address, 300)])
    # retry of the same batch: nothing moves, no event
    receipt = evm.client.push_payments([(r1.address, 300), (r2.address, 300)])
    assert evm.client.channel_events(receipt) == []
    # the receiver claimed further meanwhile: the push skips that channel, pays the other
    evm.client.claim(evm.client.sign_voucher(c1, 900), r1)
    receipt = evm.client.push_payments([(r1.address, 500), (r2.address, 500)])
    assert [(e["channelId"], e["amount"]) for e in evm.client.channel_events(receipt)] == [
        (c2, 200)
    ]
    assert (evm.client.get_channel(c1).paid, evm.client.get_channel(c2).paid) == (900, 500)
    # duplicates in one batch pay the running difference
    evm.client.push_payments([(r2.address, 600), (r2.address, 700), (r2.address, 650)])
    assert evm.client.get_channel(c2).paid == 700


def test_push_reverts_whole_batch_beyond_deposit(evm: Evm) -> None:
    r1, r2 = evm.receivers[:2]
    c1, c2 = open_channel(evm, r1, 1_000), open_channel(evm, r2, 1_000)
    err = expect_revert(
        "InsufficientDeposit", evm.client.push_payments, [(r1.address, 10), (r2.address, 1_001)]
    )
    assert err.args_dict == {"channelId": c2, "cumulativeAmount": 1_001, "deposited": 1_000}
    assert evm.client.get_channel(c1).paid == 0  # the first entry was rolled back too


def test_push_cannot_touch_channels_of_another_payer_or_unknown_ones(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r)
    # the outsider's "channel" to r does not exist: nothing deposited, nothing payable
    expect_revert(
        "InsufficientDeposit", evm.client.push_payments, [(r.address, 1)], account=evm.outsider
    )
    assert evm.client.get_channel(cid).paid == 0
    expect_revert("InsufficientDeposit", evm.client.push_payments, [(evm.receivers[5].address, 1)])


def test_push_refuses_empty_batch(evm: Evm) -> None:
    expect_revert("EmptyBatch", evm.client.push_payments, [])


def test_push_works_while_closing_but_not_after_settle(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    evm.client.close_channel(cid)
    evm.client.push_payments([(r.address, 250)])
    evm.advance(CHALLENGE_PERIOD)
    evm.client.settle(cid)
    expect_revert("InsufficientDeposit", evm.client.push_payments, [(r.address, 251)])


# ------------------------------------------------------------------------ close


def test_close_starts_challenge_period(evm: Evm) -> None:
    cid = open_channel(evm, evm.receivers[0])
    receipt = evm.client.close_channel(cid)
    block_time = evm.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    state = evm.client.get_channel(cid)
    assert state.status == "closing"
    assert state.closes_at == block_time + CHALLENGE_PERIOD
    assert evm.client.channel_events(receipt) == [
        {"event": "ChannelClosing", "channelId": cid, "closesAt": block_time + CHALLENGE_PERIOD}
    ]


def test_close_errors(evm: Evm) -> None:
    cid = open_channel(evm, evm.receivers[0])
    expect_revert("UnknownChannel", evm.client.close_channel, b"\x02" * 32)
    expect_revert("NotPayer", evm.client.close_channel, cid, account=evm.receivers[0])
    expect_revert("NotPayer", evm.client.close_channel, cid, account=evm.outsider)
    evm.client.close_channel(cid)
    expect_revert("ChannelNotOpen", evm.client.close_channel, cid)


# ----------------------------------------------------------------------- settle


def test_settle_refunds_unpaid_deposit_to_payer(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    evm.client.push_payments([(r.address, 300)])
    evm.client.close_channel(cid)
    evm.advance(CHALLENGE_PERIOD)
    hub_before, contract_before = balances(evm, evm.hub.address, evm.deployment.channels)
    # anyone may settle; the refund goes to the payer only
    receipt = evm.client.settle(cid, account=evm.outsider)
    assert balances(evm, evm.hub.address, evm.deployment.channels) == [
        hub_before + 700,
        contract_before - 700,
    ]
    assert evm.client.token_balance(evm.outsider.address) == 0
    state = evm.client.get_channel(cid)
    assert (state.status, state.deposited, state.paid, state.remaining) == ("settled", 300, 300, 0)
    assert evm.client.channel_events(receipt) == [
        {"event": "ChannelSettled", "channelId": cid, "refund": 700}
    ]


def test_settle_of_fully_paid_channel_refunds_nothing(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    evm.client.push_payments([(r.address, 1_000)])
    evm.client.close_channel(cid)
    evm.advance(CHALLENGE_PERIOD)
    receipt = evm.client.settle(cid)
    assert evm.client.channel_events(receipt)[0]["refund"] == 0
    assert len(receipt["logs"]) == 1  # no token transfer of zero


def test_settle_errors(evm: Evm) -> None:
    cid = open_channel(evm, evm.receivers[0])
    expect_revert("UnknownChannel", evm.client.settle, b"\x03" * 32)
    expect_revert("ChannelNotClosing", evm.client.settle, cid)
    evm.client.close_channel(cid)
    closes_at = evm.client.get_channel(cid).closes_at
    err = expect_revert("ChallengePeriodActive", evm.client.settle, cid)
    assert err.args_dict["closesAt"] == closes_at
    evm.advance(CHALLENGE_PERIOD - 10)
    expect_revert("ChallengePeriodActive", evm.client.settle, cid)
    evm.advance(10)
    evm.client.settle(cid)
    expect_revert("ChannelNotClosing", evm.client.settle, cid)


# ------------------------------------------------------------------------ claim


def test_claim_pays_cumulative_minus_paid_and_keeps_channel_open(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r)
    receipt = evm.client.claim(evm.client.sign_voucher(cid, 1_500), r)
    assert evm.client.token_balance(r.address) == 1_500
    assert evm.client.channel_events(receipt) == [
        {"event": "ChannelClaimed", "channelId": cid, "amount": 1_500, "paid": 1_500}
    ]
    evm.client.claim(evm.client.sign_voucher(cid, 4_000), r)
    assert evm.client.token_balance(r.address) == 4_000
    state = evm.client.get_channel(cid)
    assert (state.paid, state.status) == (4_000, "open")


def test_claim_beyond_deposit_pays_the_deposit_and_the_rest_after_top_up(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    voucher = evm.client.sign_voucher(cid, 2_500)
    evm.client.claim(voucher, r)
    assert evm.client.get_channel(cid).paid == 1_000
    expect_revert("NothingToClaim", evm.client.claim, voucher, r)
    evm.client.top_up(cid, 5_000)
    evm.client.claim(voucher, r)  # the same voucher now pays the remaining 1,500
    assert evm.client.token_balance(r.address) == 2_500


@pytest.mark.parametrize("offset", [0, -1])
def test_equal_or_lower_cumulative_pays_nothing(evm: Evm, offset: int) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r)
    evm.client.claim(evm.client.sign_voucher(cid, 1_000), r)
    err = expect_revert(
        "NothingToClaim", evm.client.claim, evm.client.sign_voucher(cid, 1_000 + offset), r
    )
    assert err.args_dict == {"channelId": cid, "cumulativeAmount": 1_000 + offset, "paid": 1_000}
    assert evm.client.token_balance(r.address) == 1_000


def test_claim_errors(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r)
    voucher = evm.client.sign_voucher(cid, 10)
    unknown = evm.client.sign_voucher(b"\x04" * 32, 10)
    expect_revert("UnknownChannel", evm.client.claim, unknown, r)
    err = expect_revert("NotReceiver", evm.client.claim, voucher, evm.outsider)
    assert err.args_dict["caller"] == evm.outsider.address
    expect_revert("NotReceiver", evm.client.claim, voucher, evm.hub)  # not even the payer


def test_zero_voucher_pays_nothing(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r)
    expect_revert("NothingToClaim", evm.client.claim, evm.client.sign_voucher(cid, 0), r)


def test_receiver_claims_during_challenge_period(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    evm.client.close_channel(cid)
    evm.advance(CHALLENGE_PERIOD - 5)
    evm.client.claim(evm.client.sign_voucher(cid, 600), r)
    assert evm.client.token_balance(r.address) == 600
    evm.advance(5)
    hub_before = evm.client.token_balance(evm.hub.address)
    evm.client.settle(cid)
    assert evm.client.token_balance(evm.hub.address) == hub_before + 400


def test_nothing_can_be_claimed_after_settle(evm: Evm) -> None:
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    voucher = evm.client.sign_voucher(cid, 800)  # signed, never cashed in time
    evm.client.close_channel(cid)
    evm.advance(CHALLENGE_PERIOD)
    evm.client.settle(cid)
    expect_revert("ChannelIsSettled", evm.client.claim, voucher, r)
    assert evm.client.token_balance(r.address) == 0


def test_claim_after_challenge_period_but_before_settle_still_pays(evm: Evm) -> None:
    """Until someone settles, the receiver's claim is still honoured (a late claim beats a late
    settle); the payer protects itself by settling as soon as the period ends."""
    r = evm.receivers[0]
    cid = open_channel(evm, r, 1_000)
    evm.client.close_channel(cid)
    evm.advance(CHALLENGE_PERIOD + 100)
    evm.client.claim(evm.client.sign_voucher(cid, 100), r)
    assert evm.client.token_balance(r.address) == 100


# ----------------------------------------------------------------------- views


def test_views_match_python(evm: Evm) -> None:
    c = evm.client
    cid = vouchers.channel_id(evm.hub.address, evm.receivers[0].address)
    assert c.channels.functions.domainSeparator().call() == vouchers.domain_separator(
        c.chain_id, evm.deployment.channels
    )
    for amount in (0, 1, 10**6, 2**128 - 1, 2**256 - 1):
        assert c.voucher_digest_onchain(cid, amount) == vouchers.voucher_digest(
            c.chain_id, evm.deployment.channels, cid, amount
        )
    fields, name, version, chain_id, contract, salt, extensions = (
        c.channels.functions.eip712Domain().call()
    )
    assert (name, version, chain_id, contract) == (
        vouchers.DOMAIN_NAME,
        vouchers.DOMAIN_VERSION,
        c.chain_id,
        evm.deployment.channels,
    )
    assert fields == b"\x0f" and salt == b"\x00" * 32 and extensions == []


def test_get_channel_of_unknown_id_is_empty(evm: Evm) -> None:
    state = evm.client.get_channel(keccak(b"nothing"))
    assert state.status == "none" and state.deposited == 0 and not state.exists


def test_amounts_above_uint128_are_refused_client_side(evm: Evm) -> None:
    with pytest.raises(ValueError):
        evm.client.push_payments([(evm.receivers[0].address, 2**128)])
    with pytest.raises(TypeError):
        evm.client.top_up(b"\x00" * 32, 1.5)  # type: ignore[arg-type]


def test_reverted_transaction_surfaces_as_contract_revert_not_status_zero(evm: Evm) -> None:
    with pytest.raises(ChainError) as info:
        evm.client.close_channel(b"\x09" * 32)
    assert isinstance(info.value, ContractRevert)
