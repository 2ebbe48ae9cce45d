"""The pictures: earnings per day on the earnings page (uPlot) and each source's share of an
answer's price in the chat. Values are read from the DOM's data attributes and compared with the
API's exact integers, never from pixels."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, new_address
from tests.web.conftest import contribute, shot


def test_earnings_per_day_chart(page: Page, web: LiveServer) -> None:
    who = new_address()
    contribute(web, "Honey never spoils: edible honey was found in ancient Egyptian tombs.", who, title="Honey")
    contribute(web, "Honeybees visit about two million flowers to make one pound of honey.", who, title="Honeybees")
    with web.client() as c:
        for q in ("Does honey spoil?", "How many flowers make a pound of honey?"):
            assert c.post("/v1/chat/completions", json={"model": "openchat-extractive",
                                                        "messages": [{"role": "user", "content": q}]}).status_code == 200
    summary = httpx.get(f"{web.url}/v1/contributors/{who}").json()
    daily = httpx.get(f"{web.url}/v1/contributors/{who}/daily?days=30").json()
    today = datetime.now(UTC).date().isoformat()
    assert summary["earned"] > 0 and daily["total"] == summary["earned"] and len(daily["days"]) == 30
    assert daily["days"][-1] == {"day": today, "amount": summary["earned"], "credits": summary["credits"]["total"]}

    page.goto(f"/earnings/{who}")
    chart = page.locator("#daily-chart")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_have_attribute("data-total", str(summary["earned"]))
    rows = chart.locator("tr[data-day]")
    expect(rows).to_have_count(30)
    assert [(r.get_attribute("data-day"), int(r.get_attribute("data-amount") or -1)) for r in rows.all()] == [
        (d["day"], d["amount"]) for d in daily["days"]]
    e = summary["earned"]
    expect(page.locator("#daily-total")).to_have_text(f"{e // 10**6}.{e % 10**6:06d} ocUSD in 30 days (UTC)")
    box = chart.locator("canvas").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100  # drawn at the card's width, not collapsed
    page.locator("#daily-chart").scroll_into_view_if_needed()
    shot(page, "earnings-chart", full_page=True)


def test_daily_api_bounds(web: LiveServer) -> None:
    for bad in ("days=0", "days=367", "days=x"):
        resp = httpx.get(f"{web.url}/v1/contributors/{new_address()}/daily?{bad}")
        assert resp.status_code == 400 or resp.status_code == 422, resp.text
        assert "error" in resp.json()
    resp = httpx.get(f"{web.url}/v1/contributors/0xnope/daily")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_address"


def test_share_of_the_price_bars(page: Page, web: LiveServer) -> None:
    alice, bob = new_address(), new_address()
    # A comparison: the answer takes a fact from each contributor's source.
    contribute(web, "The Eiffel Tower in Paris is 330 metres tall, antennas included.", alice, title="Eiffel Tower")
    contribute(web, "The Statue of Liberty in New York is 93 metres tall from the ground to the torch.", bob,
               title="Statue of Liberty")
    page.goto("/")
    page.fill("#prompt", "Which is taller, the Eiffel Tower or the Statue of Liberty?")
    # The page reads the recorded answer after the stream: each source's exact share, the price.
    with page.expect_response(lambda r: "/v1/answers/" in r.url, timeout=60_000) as answered:
        page.keyboard.press("Enter")
    recorded = answered.value.json()
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".source").first).to_be_visible()
    shares = answer.locator(".shares .share")
    fee = answer.locator('.shares .share[data-fee="true"]')
    expect(fee).to_have_count(1)
    sources = recorded["sources"]
    assert len({s["contributor"] for s in sources}) == 2 and recorded["price"] > 0, recorded  # a fact from each
    expect(shares).to_have_count(len(sources) + 1)
    for src in sources:
        bar = answer.locator(f'.shares .share[data-marker="{src["marker"]}"]')
        expect(bar).to_have_attribute("data-amount", str(src["credited_amount"]))
        expect(bar).to_have_attribute("data-price", str(recorded["price"]))
    credited = sum(s["credited_amount"] for s in sources)
    expect(fee).to_have_attribute("data-amount", str(recorded["price"] - credited))
    total = sum(int(s.get_attribute("data-amount") or 0) for s in shares.all())
    assert total == recorded["price"]  # the bars add up to the price, to the unit
    first = sources[0]
    tenths = first["credited_amount"] * 1000 // recorded["price"]
    expect(answer.locator(f'.shares .share[data-marker="{first["marker"]}"] .share-value')).to_have_text(
        f"{tenths // 10}.{tenths % 10}% · {first['credited_amount'] // 10**6}.{first['credited_amount'] % 10**6:06d}")
    answer.locator(".sources").scroll_into_view_if_needed()
    shot(page, "chat-share-bars")
