"""The pages' money formatting, run in the browser: integer base units to 6-decimal ocUSD, exactly."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.conftest import LiveServer

CASES = {
    "0": "0.000000", "1": "0.000001", "9000": "0.009000", "999999": "0.999999", "1000000": "1.000000",
    "-2500": "-0.002500", "123456789012345678901234567890": "123456789012345678901234.567890",
}


def test_amounts_are_exact(page: Page, web: LiveServer) -> None:
    page.goto("/")
    got = page.evaluate("""async (cases) => {
        const { formatAmount, formatToken, shortAddress, percent } = await import('/static/api.js');
        return { amounts: cases.map((c) => formatAmount(c)), number: formatAmount(9000), token: formatToken('9000'),
                 none: formatAmount(null), short: shortAddress('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'),
                 whole: percent(1000000), part: percent(333333) };
    }""", list(CASES))
    assert got["amounts"] == list(CASES.values())  # beyond 2**53: BigInt, never a float
    assert got["number"] == "0.009000" and got["token"] == "0.009000 ocUSD" and got["none"] == "—"
    assert got["short"] == "0x5aAe…eAed"
    assert got["whole"] == "100%" and got["part"] == "33.3%"
