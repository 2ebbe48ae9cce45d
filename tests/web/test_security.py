"""Contributed text and model output are untrusted: in the page they are text, and nothing runs."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, new_address
from tests.web.conftest import contribute, shot

# (question, contributed sentence, text the page must show literally). Each sentence answers its
# question, so the extractive answer quotes it, payload included; it is also its source's snippet.
PAYLOADS = [
    ("What colour do zorblax crystals glow?",
     'Zorblax crystals glow green at night <img src=x onerror="window.__xss=1;alert(1)">.', "<img src=x onerror="),
    ("What sound do quendril shells make?",
     "Quendril shells make a humming sound <script>window.__xss=2;alert(2)</script>.", "<script>window.__xss=2"),
    ("Where is the plimsorth ore mined?",
     'The plimsorth ore is mined on Mars <a href="javascript:window.__xss=3;alert(3)">see the plimsorth map</a>.',
     '<a href="javascript:'),
    ("How rare are vantreel pearls?",
     "Vantreel pearls are very rare, [read the vantreel pearl guide](javascript:window.__xss=4;alert(4)).",
     "read the vantreel pearl guide"),
    ("How heavy are grumbleton stones?",
     'Grumbleton stones weigh very little <svg onload="window.__xss=5;alert(5)"></svg> <iframe src="javascript:alert(6)"></iframe>.',
     "<svg onload="),
]


def assert_inert(page: Page) -> None:
    thread = page.locator("#thread")
    assert thread.locator("img, script, svg, iframe, object, embed, form").count() == 0
    assert page.locator("a[href^='javascript' i], [onerror], [onload], [onclick]").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert page.watch.dialogs == []  # type: ignore[attr-defined]


def test_xss_payloads_render_as_text_and_run_nothing(page: Page, web: LiveServer) -> None:
    for _, sentence, _ in PAYLOADS:
        contribute(web, sentence, new_address(), title=sentence[:40] + ' <img src=x onerror="window.__xss=7;alert(7)">')
    page.goto("/")
    for question, _, literal in PAYLOADS:
        page.click("#new-chat")
        page.fill("#prompt", question)
        page.keyboard.press("Enter")
        answer = page.locator(".msg.assistant").last
        expect(answer.locator(".source")).not_to_have_count(0)
        # The payload is visible as the text it is, in the answer and in its source...
        expect(answer.locator(".answer-body")).to_contain_text(literal)
        expect(answer.locator(".source-snippet").first).to_contain_text(literal)
        expect(answer.locator(".source-title").first).to_contain_text('<img src=x onerror="window.__xss=7;alert(7)">')
        # ...and none of it became markup that runs; links keep their text, never a javascript: target.
        for link in answer.locator(".answer-body a:not(.cite)").all():
            assert not (link.get_attribute("href") or "").lower().startswith("javascript")
        page.wait_for_timeout(100)
        assert_inert(page)
        if "svg" in literal:
            shot(page, "xss-as-text")
    # The answers read back from the stored conversations render the same way.
    page.reload()
    for question, _, literal in PAYLOADS:
        page.locator("#conversation-list .conv-open", has_text=question).first.click()
        expect(page.locator("#conversation-title")).to_have_text(question)
        expect(page.locator(".msg.assistant .answer-body")).to_contain_text(literal)
        expect(page.locator(".msg.assistant .source")).not_to_have_count(0)
        assert_inert(page)


def test_pages_forbid_inline_script(page: Page, web: LiveServer) -> None:
    for path in ("/", "/contribute", "/earnings", f"/earnings/{new_address()}"):
        resp = httpx.get(web.url + path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
        assert directives["script-src"] == "'self'" and "unsafe-inline" not in csp
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
        assert "<script>" not in resp.text and not re.search(r"\son[a-z]+\s*=", resp.text)  # no inline handlers
    # The browser enforces it: an inline script injected into the DOM does not run.
    page.goto("/")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
                             document.body.append(s); }""")
    assert page.evaluate("() => window.__inline") is None
    assert httpx.get(web.url + "/vendor/not-a-package.js").status_code == 404
    assert httpx.get(web.url + "/vendor/marked.esm.js").headers["content-type"].startswith("text/javascript")


def test_contributed_links_are_text_only_citation_markers_are_links(page: Page, web: LiveServer) -> None:
    # A contributed Markdown link labelled like a citation marker, and a bare URL (GFM autolinks it).
    sentence = ("Snorvel beetles live under the bark of old oak trees [2](https://evil.example/phish), "
                "as https://evil.example/bare explains.")
    contribute(web, sentence, new_address(), title="Snorvel beetles")
    page.goto("/")
    page.fill("#prompt", "Where do snorvel beetles live?")
    page.keyboard.press("Enter")
    answer = page.locator(".msg.assistant").last
    body = answer.locator(".answer-body")
    expect(answer.locator(".source")).not_to_have_count(0)
    # Shown as the text it was written as...
    expect(body).to_contain_text("[2](https://evil.example/phish)")
    expect(body).to_contain_text("https://evil.example/bare")
    expect(body.locator(".literal").first).to_have_text("[2](https://evil.example/phish)")
    # ...never as a link: the only links in the answer are our markers, pointing at its sources.
    expect(body.locator("a[href*='evil.example']")).to_have_count(0)
    expect(body.locator("a.cite")).not_to_have_count(0)
    for link in body.locator("a").all():
        assert link.get_attribute("class") == "cite", link.evaluate("a => a.outerHTML")
        assert (link.get_attribute("href") or "").startswith("#"), link.get_attribute("href")
    # The contributed "[2]" is not turned into a citation of source 2 either.
    expect(body.locator(".literal a, .literal .cite")).to_have_count(0)
    shot(page, "contributed-link-as-text")
