"""Claim from the earnings page with a browser wallet, on a real anvil, a real voucher.

A credited answer becomes a signed voucher through the real payout task bodies (aggregate,
issue_vouchers); the test wallet (tests/web/wallet.py: an EIP-1193 provider announced by
EIP-6963, signing with eth-account, forwarding to anvil) claims it from the page. The token
balance on anvil must grow by exactly the voucher's amount, the ledger's totals on the page must
follow once the settlement run records the claim, and every way it can go wrong says so."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect

from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_settle
from payouts.vouchers import SignedVoucher
from tests.conftest import LiveServer
from tests.web.conftest import contribute, shot
from tests.web.wallet import TestWallet

MODEL = "openchat-extractive"


def ocusd(units: int) -> str:
    return f"{units // 10**6}.{units % 10**6:06d}"


def credited_voucher(live: LiveServer, res: Resources, who: LocalAccount, text: str, question: str) -> dict:
    """Contribute ``text`` for ``who``, ask ``question`` (cited, credited), and let the payout
    tasks batch and voucher it; returns the voucher the API serves, with gas for ``who``."""
    contribute(live, text, who.address, title=question[:40])
    with live.client() as c:
        resp = c.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": question}]})
        assert resp.status_code == 200, resp.text
        assert any(x["contributor"] == who.address for x in resp.json()["openchat"]["credits"]), resp.json()
    run_aggregate(res)
    run_issue_vouchers(res)
    voucher = httpx.get(f"{live.url}/v1/contributors/{who.address}/voucher").json()
    assert int(voucher["cumulative_amount"]) > 0, voucher
    # Gas money for the contributor's own claim (anvil's cheat code; the token is what is claimed).
    node = res.chain_client().w3
    node.provider.make_request("anvil_setBalance", [who.address, hex(10**18)])
    return voucher


@pytest.fixture
def wallet_page(browser: Browser, chained: tuple[LiveServer, Resources]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=chained[0].url)
    pg = context.new_page()
    errors: list[str] = []
    csp: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: csp.append(msg.text) if "Content Security Policy" in msg.text else None)
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
    assert not errors, errors
    assert not csp, csp


def test_claim_with_a_wallet(wallet_page: Page, chained: tuple[LiveServer, Resources]) -> None:
    live, res = chained
    page = wallet_page
    who = Account.create()
    voucher = credited_voucher(live, res, who, "Octopuses have three hearts and blue, copper-based blood.",
                               "How many hearts does an octopus have?")
    amount = int(voucher["cumulative_amount"])
    client = res.chain_client()
    # The wallet starts on another chain (1): the page must notice and offer to switch.
    wallet = TestWallet(client.w3.provider.endpoint_uri, who.key.hex(), chain_id=1)
    wallet.install(page)
    before = client.token_balance(who.address)
    page.goto(f"/earnings/{who.address}")
    expect(page.locator('[data-total="unsettled"] .value')).to_have_text(f"{ocusd(amount)} ocUSD")
    claim = page.locator("#claim-button")
    status = page.locator("#claim-status")
    expect(claim).to_have_text(f"Claim {ocusd(amount)} ocUSD with a wallet")

    claim.click()
    expect(status).to_have_attribute("data-state", "wrong-chain")
    expect(status).to_contain_text(f"Your wallet is on chain 1; this voucher pays on chain {wallet.node_chain}")
    status.scroll_into_view_if_needed()
    shot(page, "claim-wrong-chain")
    # The person first declines the transaction itself: nothing is sent, nothing is lost.
    wallet.reject_sends = True
    page.locator("#switch-chain").click()
    expect(status).to_have_attribute("data-state", "rejected")
    expect(status).to_contain_text("You rejected the transaction in your wallet. Nothing was sent")
    assert wallet.chain_id == wallet.node_chain and "wallet_switchEthereumChain" in wallet.calls
    assert wallet.sent == [] and client.token_balance(who.address) == before

    wallet.reject_sends = False
    claim.click()
    expect(status).to_have_attribute("data-state", "claimed", timeout=60_000)
    assert wallet.errors == ["eth_sendTransaction: 4001 User rejected the request."]
    expect(status).to_contain_text(f"Claimed {ocusd(amount)} ocUSD")
    assert len(wallet.sent) == 1
    expect(status).to_have_attribute("data-tx", wallet.sent[0])
    assert client.token_balance(who.address) - before == amount  # exactly the voucher's amount
    channel = client.get_channel(bytes.fromhex(voucher["channel_id"].removeprefix("0x")))
    assert channel.paid == amount
    shot(page, "claim-claimed", full_page=True)

    # The ledger learns of the claim at the settlement run (it reads every channel's paid); the
    # page follows the totals until they show it, without a reload.
    expect(page.locator('[data-total="settled"] .value')).to_have_text("0.000000 ocUSD")
    assert run_settle(res)["synced"] >= 1
    expect(page.locator('[data-total="settled"] .value')).to_have_text(f"{ocusd(amount)} ocUSD")
    expect(page.locator('[data-total="unsettled"] .value')).to_have_text("0.000000 ocUSD")
    summary = httpx.get(f"{live.url}/v1/contributors/{who.address}").json()
    assert summary["settled"] == amount and summary["unsettled"] == 0
    expect(status.locator(".ledger-note")).to_have_text("Recorded by the ledger: the totals above show it as settled.")
    expect(page.locator("#settlements")).to_contain_text(f"{ocusd(amount)} ocUSD paid on chain by this address's own claim")
    expect(page.locator("#credits .credit-row .status")).to_have_text("settled")
    shot(page, "claim-settled", full_page=True)

    # A second click reads the channel's paid and sends nothing.
    claim.click()
    expect(status).to_have_attribute("data-state", "already-claimed")
    expect(status).to_contain_text(f"Already claimed: this channel has paid {ocusd(amount)} ocUSD")
    assert len(wallet.sent) == 1 and client.token_balance(who.address) - before == amount
    shot(page, "claim-already-claimed", full_page=True)


def test_claim_from_the_wrong_account_then_the_right_one(wallet_page: Page, chained: tuple[LiveServer, Resources]) -> None:
    """Two wallets announce themselves by EIP-6963 (no window.ethereum): the page lets the person
    pick; the one holding another account is refused with nothing sent, the payee's own claims."""
    live, res = chained
    page = wallet_page
    who, stranger = Account.create(), Account.create()
    voucher = credited_voucher(live, res, who, "Wombats produce cube-shaped droppings to mark their territory.",
                               "Why are wombat droppings cube-shaped?")
    amount = int(voucher["cumulative_amount"])
    client = res.chain_client()
    rpc = client.w3.provider.endpoint_uri
    wrong = TestWallet(rpc, stranger.key.hex())
    right = TestWallet(rpc, who.key.hex())
    wrong.install(page, window=False, name="Other wallet", rdns="org.example.other")
    right.install(page, window=False, name="Payee wallet", rdns="org.example.payee")
    page.goto(f"/earnings/{who.address}")
    page.locator("#claim-button").click()
    choices = page.locator(".claim-choices button")
    expect(choices).to_have_count(2)
    expect(page.locator(".claim-choices img.wallet-icon")).to_have_count(2)
    page.locator('.claim-choices button[data-wallet="org.example.other"]').click()
    status = page.locator("#claim-status")
    expect(status).to_have_attribute("data-state", "wrong-account")
    expect(status).to_contain_text(f"Your wallet's account {stranger.address} is not this payout address {who.address}")
    assert wrong.sent == [] and "eth_requestAccounts" in wrong.calls and right.calls == []
    status.scroll_into_view_if_needed()
    shot(page, "claim-wrong-account")
    # Nothing lost: the voucher is still there, and its owner's wallet claims it.
    expect(page.locator("#voucher pre.voucher")).to_contain_text(voucher["signature"])
    assert client.get_channel(bytes.fromhex(voucher["channel_id"].removeprefix("0x"))).paid == 0
    page.locator("#claim-button").click()
    page.locator('.claim-choices button[data-wallet="org.example.payee"]').click()
    expect(status).to_have_attribute("data-state", "claimed")
    assert len(right.sent) == 1 and wrong.sent == [] and client.token_balance(who.address) == amount


def test_claim_raced_decodes_nothing_to_claim(wallet_page: Page, chained: tuple[LiveServer, Resources]) -> None:
    """A wallet that does not know the chain is told so (4902); then the voucher is cashed
    elsewhere (another device) between the page's check and its send: the estimate reverts with
    NothingToClaim, decoded by the ABI the API serves."""
    live, res = chained
    page = wallet_page
    who = Account.create()
    voucher = credited_voucher(live, res, who, "Sloths can hold their breath for up to forty minutes underwater.",
                               "How long can a sloth hold its breath?")
    amount = int(voucher["cumulative_amount"])
    client = res.chain_client()
    # The wallet is on chain 1 and has never heard of the voucher's chain.
    wallet = TestWallet(client.w3.provider.endpoint_uri, who.key.hex(), chain_id=1)
    wallet.knows_node_chain = False
    signed = SignedVoucher(int(voucher["typed_data"]["domain"]["chainId"]), voucher["typed_data"]["domain"]["verifyingContract"],
                           bytes.fromhex(voucher["channel_id"].removeprefix("0x")), amount,
                           bytes.fromhex(voucher["signature"].removeprefix("0x")))
    wallet.before_estimate = lambda: client.claim(signed, who)
    wallet.install(page)
    page.goto(f"/earnings/{who.address}")
    page.locator("#claim-button").click()
    status = page.locator("#claim-status")
    page.locator("#switch-chain").click()
    expect(status).to_have_attribute("data-state", "unknown-chain")
    expect(status).to_contain_text(f"Your wallet does not know chain {wallet.node_chain}: add that network")
    # The person adds the network in the wallet and switches to it there, then presses Claim again.
    wallet.knows_node_chain, wallet.chain_id = True, wallet.node_chain
    page.locator("#claim-button").click()
    expect(status).to_have_attribute("data-state", "already-claimed")
    expect(status).to_contain_text(f"Already claimed: this channel has paid {ocusd(amount)} ocUSD")
    assert wallet.sent == [] and client.token_balance(who.address) == amount  # paid once, by the other claim


def test_payout_contract_endpoint(chained: tuple[LiveServer, Resources], web: LiveServer) -> None:
    live, res = chained
    body = httpx.get(f"{live.url}/v1/payouts/contract").json()
    d = res.chain_client().deployment
    assert (body["chain_id"], body["payment_channels"], body["token"], body["hub"]) == (d.chain_id, d.channels, d.token, d.hub)
    names = {(item["type"], item.get("name")) for item in body["abi"]}
    assert {("function", "claim"), ("function", "getChannel"), ("error", "NothingToClaim"),
            ("error", "NotReceiver"), ("event", "ChannelClaimed")} <= names
    assert ("function", "pushPayments") not in names  # the hub's functions are none of a wallet's business
    # An app with no deployment yet says so in the API's error shape.
    resp = httpx.get(f"{web.url}/v1/payouts/contract")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "no_deployment"
