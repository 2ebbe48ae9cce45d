"""/docs: Swagger UI served by the app itself (npm's swagger-ui-dist), under the pages' CSP."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, Route, expect

from tests.conftest import LiveServer
from tests.web.conftest import shot


def test_docs_work_offline_under_the_csp(page: Page, web: LiveServer) -> None:
    """With every host but the app's unreachable, /docs lists the API's operations, and the
    browser reports no CSP violation (its initializer is a served file, not an inline script)."""
    elsewhere: list[str] = []

    def only_the_app(route: Route) -> None:
        if route.request.url.startswith(web.url + "/"):
            route.continue_()
        else:  # a CDN, a font host, a validator badge: offline, none of them answers
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_the_app)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type in ("error", "warning") else None)
    page.goto("/docs")
    search = page.locator(".opblock-summary-path", has_text="/v1/search")
    expect(search).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions")).to_be_visible()
    expect(page.locator(".opblock-tag", has_text="knowledge")).to_be_visible()
    # Opening an operation renders its schema from /openapi.json.
    search.click()
    expect(page.locator(".opblock.is-open .opblock-description-wrapper").first).to_contain_text("opening")
    shot(page, "docs-offline", full_page=False)
    assert page.locator(".opblock").count() >= 10
    assert elsewhere == [], f"/docs reached beyond the app: {elsewhere}"
    assert [m for m in console if "Content Security Policy" in m] == []


def test_docs_pages_carry_the_csp_and_redoc_is_gone(web: LiveServer) -> None:
    with httpx.Client(base_url=web.url, timeout=30) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
        csp = docs.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe" not in csp
        assert "<script>" not in docs.text and "://" not in docs.text  # no inline script, nothing from another host
        for asset in ("/vendor/swagger-ui-bundle.js", "/vendor/swagger-ui.css", "/static/docs.js"):
            resp = c.get(asset)
            assert resp.status_code == 200, asset
        assert c.get("/vendor/swagger-ui.css").headers["content-type"].startswith("text/css")
        assert c.get("/redoc").status_code == 404
        assert c.get("/openapi.json").json()["paths"]["/v1/search"]
