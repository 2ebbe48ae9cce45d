"""The contribute page in Chromium: a snippet that is then cited, duplicates, and a data-set upload."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, new_address
from tests.web.conftest import shot

NARWHAL = "The narwhal's tusk is a single enlarged tooth that can grow longer than three metres."


def test_contribute_snippet_then_find_it_cited(page: Page, web: LiveServer) -> None:
    who = new_address()
    page.goto("/contribute")
    page.fill("#contributor", who)
    page.fill("#snippet-text", NARWHAL)
    page.fill("#snippet-title", "Narwhal tusk")
    page.fill("#snippet-licence", "CC-BY-4.0")
    page.click("#snippet-submit")
    result = page.locator("#snippet-result")
    expect(result).to_have_class("result ok")
    expect(result).to_contain_text("Stored")
    expect(result.locator(".counts")).to_contain_text("1 stored")
    expect(page.locator("#earnings-link")).to_have_attribute("href", f"/earnings/{who}")
    shot(page, "contribute-desktop", full_page=True)
    # The same text again, from someone else: refused as a copy, nothing stored.
    page.fill("#contributor", new_address())
    page.fill("#snippet-text", NARWHAL)
    page.click("#snippet-submit")
    expect(result).to_contain_text("Duplicate: not stored")
    expect(result).to_contain_text("copy of knowledge already contributed")
    # A bad address is refused with the API's reason.
    page.fill("#contributor", "0x1234")
    page.fill("#snippet-text", "Some other text about narwhals and the sea ice they live under.")
    page.click("#snippet-submit")
    expect(result).to_have_class("result error")
    expect(result).to_contain_text("Not stored")
    # Asked in the chat, the snippet is cited and credited to its contributor.
    page.goto("/")
    page.fill("#prompt", "How long can a narwhal's tusk grow?")
    page.keyboard.press("Enter")
    source = page.locator(".msg.assistant .source").first
    expect(source.locator(".source-title")).to_have_text("Narwhal tusk")
    expect(source.locator(".contributor")).to_have_attribute("title", who)


def test_dataset_upload_reports_rows(page: Page, web: LiveServer) -> None:
    rows = [
        json.dumps({"text": "Tardigrades survive freezing, boiling and the vacuum of space.", "title": "Tardigrades"}),
        '{"text": "broken json',
        json.dumps({"text": "Pistol shrimp snap their claws fast enough to create a flash of light.", "title": "Pistol shrimp"}),
        json.dumps({"text": "Tardigrades survive freezing, boiling and the vacuum of space.", "title": "Tardigrades again"}),
    ]
    page.goto("/contribute")
    page.fill("#contributor", new_address())
    page.set_input_files("#dataset-file", files=[{"name": "animals.jsonl", "mimeType": "application/jsonl",
                                                  "buffer": ("\n".join(rows) + "\n").encode()}])
    page.fill("#dataset-title", "Odd animals")
    page.click("#dataset-submit")
    result = page.locator("#dataset-result")
    expect(result).to_contain_text("Read", timeout=60_000)
    expect(page.locator("#dataset-bar")).to_have_js_property("value", 1)
    counts = result.locator(".counts")
    expect(counts).to_contain_text("2 stored")
    expect(counts).to_contain_text("1 duplicate")
    expect(counts).to_contain_text("1 rejected")
    expect(result.locator(".reason-rejected")).to_contain_text("line 2:")
    expect(result.locator(".reason-duplicate")).to_contain_text("line 4: copy of line 1")
    shot(page, "contribute-dataset", full_page=True)
    # An unreadable file is refused with the API's reason.
    page.set_input_files("#dataset-file", files=[{"name": "image.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n\x00\x00"}])
    page.click("#dataset-submit")
    expect(result).to_contain_text("Upload refused")


def test_a_copied_sentence_is_shown_taken_out_with_its_origin(page: Page, web: LiveServer) -> None:
    original = "The Tollund fen keeps peat bodies intact because its acidic water holds almost no oxygen."
    own = "Archaeologists date the oldest of those bodies to roughly the fourth century before our era."
    origin = new_address()
    with web.client() as c:
        assert c.post("/v1/contributions", json={"text": original, "contributor": origin}).status_code == 201
    page.goto("/contribute")
    page.fill("#contributor", new_address())
    page.fill("#snippet-text", f"{original} {own}")
    page.click("#snippet-submit")
    result = page.locator("#snippet-result")
    expect(result).to_contain_text("Stored")
    expect(result.locator(".counts")).to_contain_text("1 stored")
    reason = result.locator(".reason-duplicate")
    expect(reason).to_contain_text(f'sentence "{original}" copies stored chunk')
    expect(reason).to_contain_text(f"by {origin}: taken out, the rest stored")
