"""MockStablecoin: 6 decimals, mintable by its owner only."""

from __future__ import annotations

from tests.contracts.conftest import Evm, expect_revert


def test_metadata(evm: Evm) -> None:
    f = evm.client.token.functions
    assert (f.name().call(), f.symbol().call(), f.decimals().call()) == (
        "OpenChat Dev USD",
        "ocUSD",
        6,
    )
    assert f.owner().call() == evm.hub.address


def test_owner_mints_and_event_is_emitted(evm: Evm) -> None:
    r = evm.receivers[0]
    supply = evm.client.token.functions.totalSupply().call()
    receipt = evm.client.mint(r.address, 1_234_567)
    assert evm.client.token_balance(r.address) == 1_234_567
    assert evm.client.token.functions.totalSupply().call() == supply + 1_234_567
    [log] = evm.client.token.events.Transfer().process_receipt(receipt)
    assert log["args"]["to"] == r.address and log["args"]["value"] == 1_234_567


def test_non_owner_cannot_mint(evm: Evm) -> None:
    fn = evm.client.token.functions.mint(evm.outsider.address, 1)
    tx = {"to": evm.deployment.token, "data": fn._encode_transaction_data()}
    err = expect_revert("OwnableUnauthorizedAccount", evm.client.sender.send, evm.outsider, tx)
    assert err.args_dict["account"] == evm.outsider.address


def test_approve_transfer_allowance(evm: Evm) -> None:
    a, b = evm.receivers[:2]
    evm.client.mint(a.address, 100)
    evm.client.approve(40, spender=b.address, account=a)
    assert evm.client.token_allowance(a.address, b.address) == 40
    evm.client.transfer(b.address, 30, account=a)
    assert (evm.client.token_balance(a.address), evm.client.token_balance(b.address)) == (70, 30)
    expect_revert("ERC20InsufficientBalance", evm.client.transfer, b.address, 71, account=a)
