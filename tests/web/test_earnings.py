"""The earnings page in Chromium, against the payouts API: totals, credits, voucher and settlements."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, new_address
from tests.web.conftest import contribute, shot


def ocusd(units: int) -> str:
    return f"{units // 10**6}.{units % 10**6:06d}"


def test_earnings_after_a_cited_answer(page: Page, web: LiveServer) -> None:
    who = new_address()
    contribute(web, "Mantis shrimp see twelve to sixteen kinds of colour receptors in each eye.", who, title="Mantis shrimp")
    page.goto("/")
    page.fill("#prompt", "How many colour receptors does a mantis shrimp have?")
    page.keyboard.press("Enter")
    source = page.locator(".msg.assistant .source").first
    expect(source.locator(".contributor")).to_have_attribute("title", who)
    source.locator(".contributor").click()  # the contributor's short address leads to the earnings page
    expect(page).to_have_url(f"{web.url}/earnings/{who}")
    summary = httpx.get(f"{web.url}/v1/contributors/{who}").json()
    assert summary["earned"] > 0, summary
    expect(page.locator("#earnings-address")).to_contain_text(who)
    expect(page.locator('[data-total="earned"] .value')).to_have_text(f"{ocusd(summary['earned'])} ocUSD")
    for name in ("batched", "vouchered", "settled", "unsettled"):
        expect(page.locator(f'[data-total="{name}"] .value')).to_have_text(f"{ocusd(summary[name])} ocUSD")
    rows = page.locator("#credits .credit-row")
    expect(rows).to_have_count(summary["credits"]["total"])
    item = summary["credits"]["items"][0]
    expect(rows.first).to_contain_text(ocusd(item["amount"]))
    expect(rows.first).to_contain_text(item["status"])
    # No batch has run in this app: the voucher and settlements say why they are empty.
    if httpx.get(f"{web.url}/v1/contributors/{who}/voucher").status_code == 404:
        expect(page.locator("#voucher")).to_contain_text("No voucher yet")
    assert summary["below_minimum_payout"], summary  # one answer's share is below the minimum payout
    expect(page.locator("#voucher")).to_contain_text(f"owed {ocusd(summary['payout_minimum'])} ocUSD")
    expect(page.locator("#voucher")).to_contain_text(f"this one is owed {ocusd(summary['earned'])} ocUSD")
    expect(page.locator("#settlements")).to_contain_text("No settlement yet")
    shot(page, "earnings-desktop", full_page=True)


def test_earnings_address_field_and_unknown_address(page: Page, web: LiveServer) -> None:
    page.goto("/earnings")
    expect(page.locator("#earnings-status")).to_contain_text("Enter a payout address")
    stranger = new_address()
    page.fill("#address", stranger)
    page.click("#address-form button")
    expect(page).to_have_url(f"{web.url}/earnings/{stranger}")
    expect(page.locator('[data-total="earned"] .value')).to_have_text("0.000000 ocUSD")
    expect(page.locator("#credits")).to_contain_text("No credits yet")
    page.goto("/earnings/0xnot-an-address")
    expect(page.locator("#earnings-status")).to_have_class("result error")
    expect(page.locator("#earnings")).to_be_hidden()
