"""The earnings page once money moved: a real anvil, the payout tasks run for real (in-process),
the latest voucher shown, copied and downloaded, the settlement transaction listed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page, expect

from assistant.settings import load_settings
from payouts.deploy import ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_settle
from tests.conftest import DEV_KEY, LiveServer, start_server
from tests.web.conftest import contribute, shot


@pytest.fixture(scope="module")
def chained(embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Resources]]:  # type: ignore[no-untyped-def]
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("web-chain")
    chain = LocalChain(data_dir, state_interval=0).start()
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chain_rpc_url=chain.rpc_url, channel_min_topup=1_000, payout_min_owed=0)
    ensure_deployment_for_settings(settings.payouts)
    live = start_server(settings, embedder)
    res = Resources(settings.payouts)
    try:
        yield live, res
    finally:
        live.stop()
        if res.engine is not None:
            res.engine.dispose()
        chain.stop()


@pytest.fixture
def chain_page(browser: Browser, chained: tuple[LiveServer, Resources]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=chained[0].url, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def test_voucher_and_settlement_on_the_earnings_page(chain_page: Page, chained: tuple[LiveServer, Resources],
                                                     tmp_path: Path) -> None:
    live, res = chained
    page = chain_page
    who = Account.create().address
    contribute(live, "Sea otters hold hands while they sleep so that they do not drift apart.", who, title="Sea otters")
    page.goto("/")
    page.fill("#prompt", "Why do sea otters hold hands?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant .source .status")).to_have_text("credited")
    run_aggregate(res)
    run_issue_vouchers(res)
    page.goto(f"/earnings/{who}")
    voucher = httpx.get(f"{live.url}/v1/contributors/{who}/voucher").json()
    amount = int(voucher["cumulative_amount"])
    assert amount > 0
    box = page.locator("#voucher")
    expect(box).to_contain_text(f"cumulative {amount // 10**6}.{amount % 10**6:06d} ocUSD")
    expect(box.locator("pre.voucher")).to_contain_text(voucher["signature"])
    box.get_by_role("button", name="Copy voucher").click()
    expect(box.get_by_role("button", name="Copied")).to_be_visible()
    assert json.loads(page.evaluate("() => navigator.clipboard.readText()")) == voucher
    with page.expect_download() as download:
        box.get_by_role("link", name="Download JSON").click()
    saved = tmp_path / "voucher.json"
    download.value.save_as(saved)
    assert json.loads(saved.read_text()) == voucher and download.value.suggested_filename == f"voucher-{who}.json"
    expect(page.locator('[data-total="vouchered"] .value')).to_have_text(f"{amount // 10**6}.{amount % 10**6:06d} ocUSD")
    expect(page.locator("#credits .credit-row .status")).to_have_text("vouchered")
    # The hub pushes the payment on chain; the page lists the transaction and the credit is settled.
    assert run_settle(res, threshold=1)["transactions"] >= 1
    page.reload()
    summary = httpx.get(f"{live.url}/v1/contributors/{who}").json()
    tx = summary["credits"]["items"][0]["settlement_tx"]
    assert tx and summary["settled"] == amount
    expect(page.locator("#settlements")).to_contain_text(tx)
    expect(page.locator("#credits .credit-row .status")).to_have_text("settled")
    expect(page.locator('[data-total="settled"] .value')).to_have_text(f"{amount // 10**6}.{amount % 10**6:06d} ocUSD")
    shot(page, "earnings-settled", full_page=True)
    # And the answer's sources now say so in the chat.
    page.goto("/")
    page.locator("#conversation-list .conv-open").first.click()
    expect(page.locator(".msg.assistant .source .status")).to_have_text("settled")
