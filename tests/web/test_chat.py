"""The chat page in Chromium: streamed answers with their sources, keyboard, stop, models, conversations."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.assistant import copied_clause as clause
from tests.conftest import DEV_KEY, LiveServer, new_address
from tests.web.conftest import SLOW_MODEL, SLOW_WORDS, contribute, shot

LYREBIRD = "Lyrebirds can imitate chainsaws, camera shutters and car alarms with remarkable accuracy."


def ask(page: Page, question: str) -> None:
    # The page takes one question at a time (Enter is ignored while an answer is in flight).
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bbusy\b"))
    page.fill("#prompt", question)
    page.keyboard.press("Enter")


def last_answer(page: Page) -> Locator:
    return page.locator(".msg.assistant").last


def test_ask_shows_streamed_answer_and_sources(page: Page, web: LiveServer) -> None:
    who = new_address()
    contribute(web, LYREBIRD, who, title="Lyrebird mimicry")
    page.goto("/")
    expect(page.locator("#welcome")).to_be_visible()
    with page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as streamed:
        ask(page, "What sounds can lyrebirds imitate?")
    assert streamed.value.headers["content-type"].startswith("text/event-stream")
    answer = last_answer(page)
    expect(answer.locator(".answer-body")).to_contain_text("chainsaws")
    expect(page.locator(".msg.user .bubble").last).to_have_text("What sounds can lyrebirds imitate?")
    source = answer.locator(".source").first
    expect(source).to_be_visible()
    expect(source.locator(".source-title")).to_have_text("Lyrebird mimicry")
    expect(source.locator(".source-snippet")).to_contain_text("imitate chainsaws")
    expect(source.locator(".contributor")).to_have_text(f"{who[:6]}…{who[-4:]}")
    expect(source.locator(".contributor")).to_have_attribute("href", f"/earnings/{who}")
    expect(source.locator(".weight")).to_have_text("weight 100%")
    # The amount credited is the ledger's, as the API reported it, in ocUSD with 6 decimals.
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {DEV_KEY}"}) as c:
        conv = c.get("/v1/conversations").json()["data"][0]
        msgs = c.get(f"/v1/conversations/{conv['id']}").json()["messages"]
        detail = c.get(f"/v1/answers/{msgs[-1]['answer_id']}").json()
    credit = detail["sources"][0]["credited_amount"]
    assert detail["sources"][0]["contributor"] == who and credit > 0, detail
    expect(source.locator(".amount")).to_have_text(f"credited {credit // 10**6}.{credit % 10**6:06d} ocUSD")
    expect(source.locator(".status")).to_have_text("credited")
    expect(answer.locator(".sources-head")).to_contain_text(f"price {detail['price'] // 10**6}.{detail['price'] % 10**6:06d} ocUSD")
    # A marker is a link; clicking it highlights its source.
    cite = answer.locator(".answer-body a.cite").first
    expect(cite).to_have_text("1")
    cite.click()
    expect(source).to_have_class(re.compile(r"\bhighlight\b"))
    expect(answer.locator("button.copy")).to_be_visible()
    answer.locator("button.copy").click()
    expect(answer.locator("button.copy")).to_have_text("Copied")
    assert "chainsaws" in page.evaluate("() => navigator.clipboard.readText()")
    # The conversation is listed and the title shows it.
    expect(page.locator("#conversation-list .conv").first).to_contain_text("What sounds can lyrebirds imitate?")
    shot(page, "chat-desktop")


def test_a_message_answers_with_its_speaker_and_day(page: Page, web: LiveServer) -> None:
    who = new_address()
    contribute(web, "I finally rode the glass funicular up Mount Pellow yesterday.", who,
               speaker="Oriane", timestamp="2023-05-08T13:56")
    page.goto("/")
    ask(page, "When did Oriane ride the glass funicular?")
    answer = last_answer(page)
    # The quote names its speaker and the day "yesterday" means, said on 8 May 2023.
    expect(answer.locator(".answer-body")).to_contain_text("Oriane said on 8 May 2023")
    expect(answer.locator(".answer-body")).to_contain_text("7 May 2023")
    source = answer.locator(".source").first
    expect(source.locator(".source-said")).to_contain_text("Oriane")
    expect(source.locator(".source-said")).to_contain_text("2023")
    shot(page, "chat-message-source")


def test_a_copied_clause_shows_its_first_writer_under_the_copys_marker(page: Page, web: LiveServer) -> None:
    """Issue 16: an answer quoting a snippet that copied a clause lists the clause's first writer under
    the copy's marker, says why, and shows each part credited; the marker still leads to the copy."""
    origin, copier, other = new_address(), new_address(), new_address()
    contribute(web, clause.CHRONICLE, origin, title="Saint Aldric chronicle")
    for i, note in enumerate(clause.VALLEY_HIVES):
        contribute(web, note, other, title=f"Valley hives {i}")
    contribute(web, clause.COPY, copier, title="Valley bees")
    page.goto("/")
    ask(page, clause.QUESTION)
    answer = last_answer(page)
    expect(answer.locator(".answer-body")).to_contain_text("heather honey")
    first = answer.locator(".source[data-copied-by]")
    expect(first).to_have_count(1)
    expect(first.locator(".source-title")).to_have_text("Saint Aldric chronicle")
    marker = first.get_attribute("data-marker")
    expect(first.locator(".source-first")).to_have_text(
        f"Wrote first words that source {marker} repeats, so it is credited for them.")
    expect(first.locator(".contributor")).to_have_attribute("href", f"/earnings/{origin}")
    expect(first.locator(".amount")).to_contain_text("credited")
    copy = answer.locator(f".source[data-marker='{marker}']:not([data-copied-by])")
    expect(copy.locator(".source-title")).to_have_text("Valley bees")
    answer.locator(f".answer-body a.cite:text-is('{marker}')").first.click()
    expect(copy).to_have_class(re.compile(r"\bhighlight\b"))
    expect(first).not_to_have_class(re.compile(r"\bhighlight\b"))
    shot(page, "chat-first-writer")


def test_answer_without_sources_says_so(page: Page, web: LiveServer) -> None:
    page.goto("/")
    ask(page, "Qwxyzzy plonk frobnicate vorpal?")
    answer = last_answer(page)
    expect(answer.locator(".sources h3")).to_have_text("No sources")
    expect(answer.locator(".no-sources")).to_contain_text("no contributor was credited")


def test_model_picker_lists_the_models(page: Page, web: LiveServer) -> None:
    page.goto("/")
    ids = [m["id"] for m in httpx.get(f"{web.url}/v1/models").json()["data"]]
    expect(page.locator("#model-picker option")).to_have_count(len(ids))
    assert page.locator("#model-picker option").all_inner_texts() == ids
    assert ids[0] == "openchat-extractive" and SLOW_MODEL in ids
    page.select_option("#model-picker", SLOW_MODEL)
    page.reload()
    expect(page.locator("#model-picker")).to_have_value(SLOW_MODEL)  # kept for the session


def test_enter_sends_and_shift_enter_makes_a_new_line(page: Page, web: LiveServer) -> None:
    contribute(web, "Axolotls can regrow their limbs, parts of their heart and even parts of their brain.", new_address(),
               title="Axolotl")
    page.goto("/")
    page.click("#prompt")
    page.keyboard.type("Tell me about axolotls.")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("What can they regrow?")
    assert page.input_value("#prompt") == "Tell me about axolotls.\nWhat can they regrow?"
    expect(page.locator(".msg.user")).to_have_count(0)  # Shift+Enter did not send
    page.keyboard.press("Enter")
    expect(page.locator(".msg.user .bubble")).to_have_text("Tell me about axolotls.\nWhat can they regrow?")
    assert page.input_value("#prompt") == ""
    expect(last_answer(page).locator(".answer-body")).to_contain_text("regrow")


def test_stop_button_stops_the_stream(page: Page, web: LiveServer) -> None:
    page.goto("/")
    page.select_option("#model-picker", SLOW_MODEL)
    ask(page, "Count slowly, please.")
    body = last_answer(page).locator(".answer-body")
    expect(body).to_contain_text("word3")  # tokens are painted as they arrive
    expect(page.locator("#stop")).to_be_visible()
    expect(page.locator("#send")).to_be_hidden()
    page.click("#stop")
    expect(last_answer(page).locator(".answer-status")).to_have_text("Stopped.")
    expect(page.locator("#send")).to_be_visible()
    stopped = body.inner_text()
    page.wait_for_timeout(600)  # the provider would have sent several more words by now
    assert body.inner_text() == stopped
    assert f"word{SLOW_WORDS - 1}" not in stopped
    shot(page, "chat-stopped")


def test_conversations_new_rename_delete(page: Page, web: LiveServer) -> None:
    contribute(web, "The okapi is the only living relative of the giraffe and lives in the Congo rainforest.",
               new_address(), title="Okapi")
    page.watch.accept_confirms = True  # type: ignore[attr-defined]
    page.goto("/")
    ask(page, "What is the okapi related to?")
    expect(last_answer(page).locator(".source")).to_have_count(1)
    item = page.locator("#conversation-list .conv.active")
    expect(item).to_contain_text("What is the okapi related to?")
    conv_id = item.get_attribute("data-id")
    # A follow-up continues the same conversation.
    ask(page, "Where does the okapi live?")
    expect(page.locator(".msg.assistant")).to_have_count(2)
    expect(last_answer(page).locator(".answer-body")).to_contain_text("Congo")
    expect(page.locator(f'#conversation-list .conv[data-id="{conv_id}"]')).to_have_count(1)
    # Rename.
    item.hover()
    item.locator(".conv-rename").click()
    page.fill(".conv-title-input", "Okapi facts")
    page.keyboard.press("Enter")
    expect(page.locator(f'#conversation-list .conv[data-id="{conv_id}"]')).to_have_text(re.compile("Okapi facts"))
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {DEV_KEY}"}) as c:
        conv = c.get(f"/v1/conversations/{conv_id}").json()
        assert conv["title"] == "Okapi facts" and len(conv["messages"]) == 4
    # New chat empties the thread; opening the conversation again shows it with its sources.
    page.click("#new-chat")
    expect(page.locator("#welcome")).to_be_visible()
    expect(page.locator(".msg")).to_have_count(0)
    page.locator(f'#conversation-list .conv[data-id="{conv_id}"] .conv-open').click()
    expect(page.locator(".msg.user")).to_have_count(2)
    expect(page.locator(".msg.assistant .source")).to_have_count(2)
    expect(page.locator("#conversation-title")).to_have_text("Okapi facts")
    # Delete (after a confirm), and it is gone from the list and the API.
    row = page.locator(f'#conversation-list .conv[data-id="{conv_id}"]')
    row.hover()
    row.locator(".conv-delete").click()
    expect(row).to_have_count(0)
    expect(page.locator("#welcome")).to_be_visible()
    assert any(d.startswith("confirm:") for d in page.watch.dialogs)  # type: ignore[attr-defined]
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {DEV_KEY}"}) as c:
        assert c.get(f"/v1/conversations/{conv_id}").status_code == 404


def test_api_key_stays_in_session_storage(page: Page, web: LiveServer) -> None:
    page.goto("/")
    ask(page, "What sounds can lyrebirds imitate?")
    expect(last_answer(page).locator(".sources")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('openchat.apiKey')") == DEV_KEY
    assert page.evaluate("() => JSON.stringify(localStorage)").find(DEV_KEY) == -1
    assert not [u for u in page.watch.requests if DEV_KEY in u]  # type: ignore[attr-defined]
    # A wrong key: the page says so and offers the key dialog; a good key set there works.
    page.evaluate("() => sessionStorage.setItem('openchat.apiKey', 'wrong-key')")
    ask(page, "What sounds can lyrebirds imitate?")
    expect(last_answer(page).locator(".answer-status.error")).to_contain_text("API key was refused")
    expect(page.locator("#key-dialog")).to_be_visible()
    page.fill("#key-dialog input", DEV_KEY)
    page.click("#key-dialog button[value=save]")
    expect(page.locator("#key-dialog")).to_be_hidden()
    ask(page, "What sounds can lyrebirds imitate?")
    expect(last_answer(page).locator(".source")).to_have_count(1)


def test_short_balance_is_shown_clearly(page: Page, web: LiveServer) -> None:
    from assistant.auth import ApiKeys

    app = web.server.config.app
    keys = app.state.api_keys
    app.state.api_keys = ApiKeys({DEV_KEY: "dev", "broke-key": "broke-account"})
    try:
        page.goto("/")
        page.evaluate("() => sessionStorage.setItem('openchat.apiKey', 'broke-key')")
        with page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as resp:
            ask(page, "What sounds can lyrebirds imitate?")
        if resp.value.status != 402:
            raise AssertionError(f"an account with no balance was not refused with 402 (got {resp.value.status})")
        status = last_answer(page).locator(".answer-status.error")
        expect(status).to_contain_text("Your balance does not cover this answer")
        shot(page, "chat-402")
    finally:
        app.state.api_keys = keys
