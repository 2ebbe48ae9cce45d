"""The knowledge base through its HTTP API, on SQLite + Qdrant local and on PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from eth_utils import to_checksum_address

from assistant.snippets import SNIPPET_CHARS
from retrieval.paraphrase import PARAPHRASE_COSINE
from tests.assistant import copied_clause as clause
from tests.conftest import DEV_KEY, LiveServer, funded_account, new_address

FACTS = [
    ("Photosynthesis", "Photosynthesis in plants converts light energy, water and carbon dioxide into glucose and oxygen inside chloroplasts."),
    ("Mitochondria", "Mitochondria produce most of the cell's ATP through oxidative phosphorylation across their inner membrane."),
    ("Volcanoes", "Basaltic volcanoes such as those on Hawaii erupt runny lava that forms broad shield-shaped mountains."),
    ("Tides", "Ocean tides are raised mainly by the Moon's gravity, with a smaller contribution from the Sun."),
]


def assert_openai_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def jsonl(rows: list[dict[str, Any] | str]) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


def upload(api: LiveServer, name: str, data: bytes, contributor: str, wait: bool = True, **form: str) -> httpx.Response:
    with api.client() as c:
        return c.post("/v1/datasets", params={"wait": str(wait).lower()}, files={"file": (name, data)},
                      data={"contributor": contributor, **form})


def search(api: LiveServer, query: str, **kw: Any) -> list[dict[str, Any]]:
    with api.client() as c:
        resp = c.post("/v1/search", json={"query": query, **kw})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_snippet_is_stored_and_found(api: LiveServer) -> None:
    who = new_address()
    with api.client() as c:
        resp = c.post("/v1/contributions", json={"text": FACTS[0][1], "title": FACTS[0][0], "contributor": who.lower(),
                                                 "source": "https://example.org/p", "licence": "CC-BY-4.0"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["chunks_stored"] == 1 and body["status"] == "complete" and body["id"]
    hits = search(api, "how do plants turn light into sugar", top_k=3)
    top = hits[0]
    # A short fact's preview is its first half at most: never the whole of it.
    assert top["text_chars"] == len(FACTS[0][1]) and len(top["snippet"]) <= len(FACTS[0][1]) // 2
    assert top["snippet"].endswith("…") and FACTS[0][1].startswith(top["snippet"][:-1])
    assert top["contributor"] == who  # stored checksummed
    assert top["title"] == "Photosynthesis" and top["contribution_id"] == body["id"]
    assert set(top) == {"chunk_id", "score", "snippet", "text_chars", "title", "source_id", "contributor", "contribution_id", "speaker", "timestamp"}


def test_copies_are_refused_and_origin_keeps_the_text(api: LiveServer) -> None:
    origin, copier = new_address(), new_address()
    text = "The speed of sound in dry air at 20 degrees Celsius is about 343 metres per second."
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": text, "contributor": origin}).status_code == 201
        exact = c.post("/v1/contributions", json={"text": "  " + text.upper() + "\n", "contributor": copier})
        err = assert_openai_error(exact, 409, "duplicate_content")
        assert "copy" in err["message"]
        near = c.post("/v1/contributions", json={"text": text.replace("about", "roughly"), "contributor": copier})
        assert_openai_error(near, 409, "duplicate_content")
        again = c.post("/v1/contributions", json={"text": text, "contributor": origin})
        assert_openai_error(again, 409, "duplicate_content")
    hits = search(api, "speed of sound in air", top_k=5)
    assert [h["contributor"] for h in hits if h["snippet"].startswith("The speed of sound")] == [origin]
    assert search(api, "speed of sound", filters={"contributor": copier}) == []


def test_distinct_but_related_text_is_not_a_near_duplicate(api: LiveServer) -> None:
    who = new_address()
    a = "Aspirin irreversibly inhibits cyclooxygenase, reducing thromboxane synthesis in platelets."
    b = "Ibuprofen reversibly inhibits cyclooxygenase enzymes and is used to treat pain and fever."
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": a, "contributor": who}).status_code == 201
        assert c.post("/v1/contributions", json={"text": b, "contributor": new_address()}).status_code == 201


@pytest.mark.parametrize(
    ("payload", "status", "code", "param"),
    [
        ({"text": "x", "contributor": "0x123"}, 400, "invalid_address", "contributor"),
        ({"text": "x", "contributor": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, 400, "invalid_address", "contributor"),
        ({"contributor": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, 400, "invalid_request", "text"),
        ({"text": "   ", "contributor": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, 400, "invalid_request", "text"),
        ({"text": "x" * 20_001, "contributor": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, 413, "text_too_long", "text"),
    ],
)
def test_bad_snippets_get_openai_errors(api: LiveServer, payload: dict[str, Any], status: int, code: str, param: str) -> None:
    with api.client() as c:
        err = assert_openai_error(c.post("/v1/contributions", json=payload), status, code)
    assert err["param"] == param


def test_malformed_json_body(api: LiveServer) -> None:
    with api.client() as c:
        resp = c.post("/v1/contributions", content=b"{not json", headers={"content-type": "application/json"})
    assert_openai_error(resp, 400, "invalid_request")


def test_writes_need_a_key(api: LiveServer) -> None:
    body = {"text": "Unauthenticated text.", "contributor": new_address()}
    with api.client(None) as c:
        assert_openai_error(c.post("/v1/contributions", json=body), 401, "missing_api_key")
        assert_openai_error(c.post("/v1/datasets", files={"file": ("a.txt", b"hi")}, data={"contributor": new_address()}), 401)
    with api.client("wrong") as c:
        assert_openai_error(c.post("/v1/contributions", json=body), 401, "invalid_api_key")


def test_oversized_json_body_is_refused_early(api: LiveServer) -> None:
    big = b'{"text": "' + b"a" * (api.settings.app.max_request_bytes + 10) + b'"}'
    with api.client() as c:
        resp = c.post("/v1/contributions", content=big, headers={"content-type": "application/json"})
    assert_openai_error(resp, 413, "request_too_large")


def test_jsonl_dataset_reports_rows_and_keeps_good_ones(api: LiveServer) -> None:
    who = new_address()
    rows: list[dict[str, Any] | str] = [
        {"id": "doc-1", "title": "Glaciers", "text": "Glaciers carve U-shaped valleys as they slowly flow downhill under their own weight.", "lang": "en"},
        "{broken json",
        {"id": "doc-3", "title": "no text here"},
        {"id": "doc-4", "text": "Coral reefs are built by colonies of tiny animals that secrete calcium carbonate skeletons."},
        {"id": "doc-5", "text": "Glaciers carve U-shaped valleys as they slowly flow downhill under their own weight."},
        {"id": "doc-6", "text": ""},
    ]
    resp = upload(api, "geo.jsonl", jsonl(rows), who, title="Earth facts")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "complete" and body["progress"] == 1.0
    assert body["rows"] == 6 and body["rows_rejected"] == 3
    assert body["chunks_stored"] == 2 and body["chunks_duplicate"] == 1
    assert {(e["line"], e["error"].split(":")[0]) for e in body["errors"]} == {
        (2, "malformed JSON"), (3, "missing 'text'"), (6, "'text' is empty")}
    assert body["duplicates"][0]["line"] == 5 and body["duplicates"][0]["same_as_line"] == 1
    hits = search(api, "how do coral reefs form", filters={"contribution_id": body["id"]})
    assert hits[0]["source_id"] == "doc-4" and hits[0]["contributor"] == who
    glacier = search(api, "U-shaped valleys glaciers", filters={"contributor": who}, top_k=1)[0]
    assert glacier["title"] == "Glaciers" and glacier["source_id"] == "doc-1"

    # The same file again: nothing new, every chunk reported as a duplicate of the first upload.
    again = upload(api, "geo.jsonl", jsonl(rows), who).json()
    assert again["chunks_stored"] == 0 and again["chunks_duplicate"] == 3 and again["rows_rejected"] == 3
    assert all("chunk_id" in d or "same_as_line" in d for d in again["duplicates"])


def test_background_upload_reports_progress(api: LiveServer) -> None:
    who = new_address()
    rows = [{"id": f"r{i}", "text": f"Record {i}: the {w} of sample {i * 7919 % 1000} was measured at {i * 13 % 97} units on day {i}."}
            for i, w in enumerate(["mass", "length", "charge", "temperature"] * 10)]
    resp = upload(api, "records.jsonl", jsonl(rows), who, wait=False)  # type: ignore[arg-type]
    assert resp.status_code == 202, resp.text
    location = resp.headers["location"]
    assert location == f"/v1/datasets/{resp.json()['id']}"
    deadline = time.monotonic() + 120
    with api.client(None) as c:
        while (state := c.get(location).json())["status"] == "processing":
            assert 0.0 <= state["progress"] <= 1.0
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert state["status"] == "complete" and state["rows"] == 40
    assert state["chunks_stored"] + state["chunks_near_duplicate"] == 40


def test_csv_markdown_and_text_datasets(api: LiveServer) -> None:
    who = new_address()
    csv_data = b'id,title,text,year\n1,Moss,"Mosses reproduce with spores, not seeds.",2001\n2,Ferns,,2002\n'
    body = upload(api, "plants.csv", csv_data, who).json()
    assert body["chunks_stored"] == 1 and body["errors"] == [{"line": 3, "error": "'text' is empty"}]
    # Not the Saturn-rings sentence other files store on the same session server: rewording it
    # would be taken out as a copy, whichever file ran first (DEVELOPERS.md).
    md = b"# Saturn\n\nSaturn is less dense than water and would float in a large enough bath.\n\n## Titan\n\nTitan has lakes of liquid methane.\n"
    body = upload(api, "saturn.md", md, who).json()
    assert body["chunks_stored"] == 2
    hit = search(api, "lakes of methane", filters={"contribution_id": body["id"]})[0]
    assert hit["title"] == "Titan"
    txt = b"Octopuses have three hearts.\n\nTwo pump blood through the gills.\n"
    body = upload(api, "notes.txt", txt, who).json()
    assert body["chunks_stored"] == 1
    assert search(api, "how many hearts does an octopus have", top_k=1)[0]["title"] == "notes.txt"


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("empty.jsonl", b"", 400, "empty_file"),
        ("blank.txt", b"\n\n  \n", 400, "empty_file"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00", 415, "unsupported_format"),
        ("binary.txt", b"abc\x00def", 415, "unsupported_format"),
        ("nocol.csv", b"a,b\n1,2\n", 400, "invalid_dataset"),
    ],
)
def test_bad_datasets_are_refused_whole(api: LiveServer, name: str, data: bytes, status: int, code: str) -> None:
    assert_openai_error(upload(api, name, data, new_address()), status, code)


def test_dataset_needs_valid_contributor_and_file(api: LiveServer) -> None:
    assert_openai_error(upload(api, "a.txt", b"Some text.", "nobody"), 400, "invalid_address")
    with api.client() as c:
        assert_openai_error(c.post("/v1/datasets", data={"contributor": new_address()}), 400)


HUB = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # the default hub key's address (anvil's first account)


@pytest.mark.parametrize(("address", "why"), [
    ("0x0000000000000000000000000000000000000000", "the zero address"),
    (HUB, "the hub's own address"),
    (HUB.lower(), "the hub's own address"),
    ("0x0000000000000000000000000000000000000001", "the ecRecover precompile"),
    ("0x0000000000000000000000000000000000000011", "the BLS12_MAP_FP2_TO_G2 precompile"),
    ("0x0000000000000000000000000000000000000100", "the P256VERIFY precompile"),
])
def test_unpayable_contributors_are_refused_and_nothing_is_stored(api: LiveServer, address: str, why: str) -> None:
    text = f"Basalt columns form as thick lava cools and contracts ({address[-6:]} {why})."
    with api.client() as c:
        err = assert_openai_error(c.post("/v1/contributions", json={"text": text, "contributor": address}),
                                  400, "unpayable_address")
    assert err["param"] == "contributor"
    assert err["message"].startswith(f"contributor {to_checksum_address(address)} can never be paid: it is {why}")
    assert err["message"].endswith("Nothing was stored.")
    err = assert_openai_error(upload(api, "rows.jsonl", jsonl([{"text": text}]), address), 400, "unpayable_address")
    assert why in err["message"] and err["param"] == "contributor"
    assert search(api, "basalt columns lava", filters={"contributor": address}) == []


def test_search_validation_and_filters(api: LiveServer) -> None:
    with api.client(None) as anonymous:  # search returns contributed text whole: a key is needed
        assert_openai_error(anonymous.post("/v1/search", json={"query": "x"}), 401, "missing_api_key")
    with api.client() as c:
        assert_openai_error(c.post("/v1/search", json={"query": ""}), 400)
        assert_openai_error(c.post("/v1/search", json={"query": "x", "top_k": 0}), 400)
        assert_openai_error(c.post("/v1/search", json={"query": "x", "filters": {"contributor": "bad"}}), 400, "invalid_address")
        assert c.post("/v1/search", json={"query": "the of and"}).status_code == 200
    assert_openai_error(httpx.get(api.url + "/v1/contributions/999999"), 404, "not_found")


def test_health(api: LiveServer) -> None:
    body = httpx.get(api.url + "/healthz").json()
    assert body["status"] == "ok" and body["checks"]["database"] == "ok" and body["checks"]["vector_store"] == "ok"


def test_a_message_keeps_its_speaker_and_normalised_time(api: LiveServer) -> None:
    who = new_address()
    text = "I finally repaired the blue rowing boat at the harbour yesterday."
    with api.client() as c:
        resp = c.post("/v1/contributions", json={"text": text, "contributor": who, "speaker": "  Oriel   Vance ",
                                                 "timestamp": "2023-05-08T13:56"})
    assert resp.status_code == 201, resp.text
    hit = search(api, "Oriel repaired a rowing boat", filters={"contributor": who}, top_k=1)[0]
    assert text.startswith(hit["snippet"][:-1]) and hit["text_chars"] == len(text)
    assert hit["speaker"] == "Oriel Vance" and hit["timestamp"] == "2023-05-08T13:56:00"


def test_plain_knowledge_has_no_speaker_or_time(api: LiveServer) -> None:
    who = new_address()
    text = "Lighthouse lenses of the Fresnel type focus a lamp's light into a narrow horizontal beam."
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": text, "contributor": who}).status_code == 201
    hit = search(api, "Fresnel lighthouse lens", filters={"contributor": who}, top_k=1)[0]
    assert hit["speaker"] is None and hit["timestamp"] is None


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"timestamp": "last Tuesday"}, "timestamp"), ({"timestamp": 20230508}, "timestamp"), ({"speaker": ["Oriel"]}, "speaker")],
)
def test_a_bad_speaker_or_timestamp_is_refused_and_nothing_stored(api: LiveServer, extra: dict[str, Any], param: str) -> None:
    who = new_address()
    body = {"text": "I saw a heron standing in the millpond this morning.", "contributor": who, **extra}
    with api.client() as c:
        err = assert_openai_error(c.post("/v1/contributions", json=body), 400, "invalid_request")
    assert err["param"] == param and param in err["message"]
    assert search(api, "heron in the millpond", filters={"contributor": who}) == []


def test_dataset_messages_answer_when_questions_with_the_resolved_date(api: LiveServer) -> None:
    who = new_address()
    rows: list[dict[str, Any] | str] = [
        {"id": "m1", "text": "I went to a glassblowing workshop yesterday.", "speaker": "Oriel", "timestamp": "2023-05-08T13:56"},
        {"id": "m2", "text": "I planted three quince trees last year.", "speaker": "Tamsin", "timestamp": "2023-05-08T14:02"},
        {"id": "m3", "text": "My kiln cracked during the spring firing.", "speaker": "Oriel", "timestamp": "the eighth of May"},
    ]
    body = upload(api, "chat.jsonl", jsonl(rows), who).json()
    assert body["chunks_stored"] == 2
    assert [(e["line"], "'the eighth of May' is not ISO 8601" in e["error"]) for e in body["errors"]] == [(3, True)]
    hit = search(api, "glassblowing workshop", filters={"contribution_id": body["id"]}, top_k=1)[0]
    assert (hit["speaker"], hit["timestamp"], hit["source_id"]) == ("Oriel", "2023-05-08T13:56:00", "m1")

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)
    completion = client.chat.completions.create(
        model="openchat-extractive", messages=[{"role": "user", "content": "When did Oriel go to the glassblowing workshop?"}])
    text = completion.choices[0].message.content
    # The answer says who said it and when, and what "yesterday" meant that day.
    assert text is not None and "Oriel said on 8 May 2023" in text and "yesterday (7 May 2023)" in text
    cites = completion.model_extra["citations"]
    assert cites and all(c["contributor"] == who for c in cites)
    assert {(c["speaker"], c["timestamp"]) for c in cites} == {("Oriel", "2023-05-08T13:56:00")}
    # The recorded answer's sources carry them too.
    with api.client() as c:
        recorded = c.get(f"/v1/answers/{completion.model_extra['openchat']['answer_id']}").json()
    assert {(s["speaker"], s["timestamp"]) for s in recorded["sources"]} == {("Oriel", "2023-05-08T13:56:00")}
    # Oriel's message is not Tamsin's: asked about Tamsin, the sources do not answer.
    other = client.chat.completions.create(
        model="openchat-extractive", messages=[{"role": "user", "content": "When did Tamsin go to the glassblowing workshop?"}])
    assert other.choices[0].message.content == "My sources do not answer this question."
    assert other.model_extra["citations"] == []


LIGHTHOUSE = [  # one chunk (well under 200 tokens), far longer than a snippet; a distinct fact a sentence
    "The Skerryvore lighthouse stands on a reef eleven miles southwest of Tiree in the Hebrides.",
    "Alan Stevenson designed its granite tower, which rises forty-eight metres above the rocks.",
    "Its builders quarried the stone on the island of Mull and dressed every block to fit.",
    "Work on the reef could only be done in calm summer weather between 1838 and 1844.",
    "The keepers lived in a barracks on Tiree and were rowed out in turns to the tower.",
    "A fire in 1954 gutted the interior, and the light was automated in 1972 after repairs.",
    "Its flash of white light every ten seconds can be seen twenty-three nautical miles away.",
]


def keyed_account(api: LiveServer, balance: int) -> str:
    """The key of a new account holding ``balance`` base units."""
    return funded_account(api, balance)[1]


def test_search_shows_a_bounded_opening_never_the_whole_text(api: LiveServer) -> None:
    """An account at balance 0 is refused an answer (402) and gets from search only each chunk's
    opening: whatever it searches for, the rest of the text never comes back."""
    who, text = new_address(), " ".join(LIGHTHOUSE)
    assert len(text) > 2 * SNIPPET_CHARS
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": text, "title": "Skerryvore", "contributor": who}).status_code == 201
    broke = keyed_account(api, 0)
    with api.client(key=broke) as c:
        chat = c.post("/v1/chat/completions", json={"model": "openchat-extractive",
                                                    "messages": [{"role": "user", "content": "Who designed Skerryvore?"}]})
        assert_openai_error(chat, 402, "insufficient_quota")
        seen: set[str] = set()
        for sentence in LIGHTHOUSE:  # each sentence asked for in its own words
            resp = c.post("/v1/search", json={"query": sentence, "top_k": 100, "filters": {"contributor": who}})
            assert resp.status_code == 200, resp.text
            [hit] = resp.json()["data"]
            assert "text" not in hit
            assert hit["text_chars"] == len(text)
            seen.add(hit["snippet"])
    [opening] = seen  # the same opening whatever the query
    assert len(opening) <= SNIPPET_CHARS and opening.endswith("…")
    assert text.startswith(opening[:-1]) and LIGHTHOUSE[0] in opening
    assert not any(sentence[:40] in opening for sentence in LIGHTHOUSE[-3:])
    # A funded key sees the same bounded opening: search is not where text is read whole.
    [funded] = search(api, LIGHTHOUSE[-1], filters={"contributor": who})
    assert funded["snippet"] == opening


def test_search_never_shows_a_short_message_whole(api: LiveServer) -> None:
    """A chat message or a one-line fact is shorter than a snippet: search shows at most half of it."""
    who, text = new_address(), "Skerryvore's keeper saw the comet from the lantern gallery."
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": text, "contributor": who, "speaker": "Keeper Ross",
                                                 "timestamp": "1858-10-05T21:00"}).status_code == 201
    with api.client(key=keyed_account(api, 0)) as c:
        resp = c.post("/v1/search", json={"query": "keeper comet lantern gallery", "filters": {"contributor": who}})
    [hit] = resp.json()["data"]
    assert len(hit["snippet"]) <= len(text) // 2 and text.startswith(hit["snippet"][:-1])
    assert "comet" not in hit["snippet"] and hit["text_chars"] == len(text)
    assert (hit["speaker"], hit["timestamp"]) == ("Keeper Ross", "1858-10-05T21:00:00")


def copy_earns_nothing(api: LiveServer, *, original: tuple[str, str], own: str, copy: str, title: str,
                       find: str, question: str, expected: str) -> dict:
    """Issue 16's copy case end to end: ``original`` (two sentences) stored by one contributor; ``copy``
    alone from another refused with 409 naming the original chunk and contributor; ``copy own`` stored
    without the copy; the answer to ``question`` holds ``expected`` and pays the original contributor
    only. Returns the report entry of the removed copy (checked to name the original)."""
    origin, copier = new_address(), new_address()
    with api.client() as c:
        made = c.post("/v1/contributions", json={"text": " ".join(original), "title": title, "contributor": origin})
        assert made.status_code == 201, made.text
        [chunk_id] = [h["chunk_id"] for h in search(api, find, top_k=5) if h["contribution_id"] == made.json()["id"]]
        err = assert_openai_error(c.post("/v1/contributions", json={"text": copy, "contributor": copier}),
                                  409, "duplicate_content")
        assert f"chunk {chunk_id} by {origin}" in err["message"]
        mixed = c.post("/v1/contributions", json={"text": f"{copy} {own}", "contributor": copier})
    assert mixed.status_code == 201, mixed.text
    body = mixed.json()
    [entry] = body["duplicates"]
    named = {k: entry[k] for k in ("line", "kind", "chunk_id", "origin_contributor", "sentence", "outcome")}
    assert body["chunks_stored"] == 1 and named == {
        "line": 1, "kind": "copied_sentence", "chunk_id": chunk_id, "origin_contributor": origin,
        "sentence": copy, "outcome": "sentence_removed"}
    word = title.split()[0]
    assert [h["text_chars"] for h in search(api, word, top_k=5, filters={"contributor": copier})] == [len(own)]

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)
    reply = client.chat.completions.create(model="openchat-extractive",
                                           messages=[{"role": "user", "content": question}])
    assert expected in (reply.choices[0].message.content or "")
    assert [c["contributor"] for c in reply.model_extra["openchat"]["credits"]] == [origin]
    assert {c["contributor"] for c in reply.model_extra["citations"]} == {origin}
    return entry


def test_copying_one_sentence_of_a_snippet_earns_the_copier_nothing(api: LiveServer) -> None:
    """Issue 16, the case found: a new snippet copies one sentence of an existing two-sentence snippet.
    The copy alone is refused naming the original; beside a fact of its own it is taken out, so the
    answer to a question about that sentence pays the original contributor, never the copier."""
    first = "The Kaldera glassworks on Murano fired its furnaces with beech wood until the year 1874."
    entry = copy_earns_nothing(
        api, original=(first, "Its master blowers trained apprentices for eleven years before they could sign a vase."),
        own="The Kaldera museum now displays three hundred signed vases in its restored east wing.", copy=first,
        title="Kaldera glassworks", find="Kaldera glassworks beech wood furnaces",
        question="What did the Kaldera glassworks fire its furnaces with?", expected="beech")
    assert "similarity" not in entry




def test_a_clause_too_short_to_refuse_pays_its_first_writer_when_an_answer_quotes_it(api: LiveServer) -> None:
    """Issue 16, copies of parts: a copied clause under half of its sentence and without a number is
    kept at intake (it may be a stock phrase), but an answer that quotes it pays the first writer for
    those words even when the first writer's chunk is not among the answer's sources: listed under
    the copy's marker with ``copied_by``, the copier keeping only the share of its own words, exact
    to the part per million, in the response and in the recorded answer."""
    origin, copier, other = new_address(), new_address(), new_address()
    first, copy = clause.CHRONICLE, clause.COPY
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": first, "title": "Saint Aldric", "contributor": origin}).status_code == 201
        for i, note in enumerate(clause.VALLEY_HIVES):
            assert c.post("/v1/contributions", json={"text": note, "title": f"Valley hives {i}", "contributor": other}).status_code == 201
        kept = c.post("/v1/contributions", json={"text": copy, "title": "Valley bees", "contributor": copier})
    assert kept.status_code == 201 and kept.json()["chunks_stored"] == 1 and kept.json()["duplicates"] == [], kept.text
    [copy_hit] = search(api, copy, top_k=5, filters={"contributor": copier})
    [first_hit] = search(api, first, top_k=5, filters={"contributor": origin})

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)
    reply = client.chat.completions.create(model="openchat-extractive", messages=[{"role": "user", "content": clause.QUESTION}])
    assert "heather honey" in (reply.choices[0].message.content or "")
    citations = reply.model_extra["citations"]
    [own] = [c for c in citations if c["chunk_id"] == copy_hit["chunk_id"]]
    [paid_first] = [c for c in citations if c["chunk_id"] == first_hit["chunk_id"]]
    assert own["copied_by"] is None and sum(c["weight_ppm"] for c in citations) == 1_000_000
    assert (paid_first["copied_by"], paid_first["marker"]) == (copy_hit["chunk_id"], own["marker"]), citations
    assert paid_first["weight_ppm"] * 17 == pytest.approx(own["weight_ppm"] * 15, abs=17)
    credits = {c["contributor"]: c["amount"] for c in reply.model_extra["openchat"]["credits"]}
    assert credits[origin] > 0 and credits[copier] > credits[origin]
    answer_id = reply.model_extra["openchat"]["answer_id"]
    with api.client() as c:
        recorded = c.get(f"/v1/answers/{answer_id}").json()
    assert sorted((s["chunk_id"], s["copied_by"], s["weight_ppm"]) for s in recorded["sources"]) == \
        sorted((c["chunk_id"], c["copied_by"], c["weight_ppm"]) for c in citations)
    by_chunk = {s["chunk_id"]: s["credited_amount"] for s in recorded["sources"]}
    assert by_chunk[first_hit["chunk_id"]] == credits[origin] and by_chunk[copy_hit["chunk_id"]] == credits[copier]


def test_a_copied_clause_pays_its_first_writer_when_both_are_sources(api: LiveServer) -> None:
    """A copied clause with its origin among the answer's sources too: the copied words' part of the
    copy's share is credited to the origin under the origin's own marker (16 of the copy's 30 words)."""
    origin, copier = new_address(), new_address()
    first = ("In the spring of the flood year, the ferrymen of Old Harlow kept the river crossing open by lashing "
             "together a raft of empty cider barrels and oak planks from the ruined mill downstream of the weir.")
    copy = ("These days, when the bridge is closed for repairs, the village keeps the crossing open by lashing "
            "together a raft of empty cider barrels and oak planks from the boatyard.")
    with api.client() as c:
        assert c.post("/v1/contributions", json={"text": first, "contributor": origin}).status_code == 201
        kept = c.post("/v1/contributions", json={"text": copy, "contributor": copier})
    assert kept.status_code == 201 and kept.json()["duplicates"] == [], kept.text
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)
    reply = client.chat.completions.create(model="openchat-extractive", messages=[
        {"role": "user", "content": "When the bridge is closed for repairs, how does the village keep the crossing open?"}])
    assert (reply.choices[0].message.content or "").startswith("These days")
    weights = {c["contributor"]: (c["weight_ppm"], c["copied_by"]) for c in reply.model_extra["citations"]}
    assert weights == {copier: (466_667, None), origin: (533_333, None)}  # 14/30 and 16/30, to the unit


def test_a_message_is_read_with_what_its_speaker_said_next(api: LiveServer) -> None:
    who = new_address()
    rows: list[dict[str, Any] | str] = [
        {"id": "x1", "text": "I finally signed with a new rowing club - so excited for the regatta season!",
         "speaker": "Rhea Lindqvist", "timestamp": "2024-03-02T10:00"},
        {"id": "x2", "text": "No way! Which club?", "speaker": "Bram Okafor", "timestamp": "2024-03-02T10:01"},
        {"id": "x3", "text": "The Thames Otters! Practice starts on Monday.", "speaker": "Rhea Lindqvist",
         "timestamp": "2024-03-02T10:02"},
        # Hours later: another exchange, not the rest of x3.
        {"id": "x4", "text": "My new club lent me a green racing shell for the season.", "speaker": "Rhea Lindqvist",
         "timestamp": "2024-03-02T15:30"},
    ]
    assert upload(api, "rowing.jsonl", jsonl(rows), who).json()["chunks_stored"] == 4
    question = "Which rowing club did Rhea sign with?"
    found = api.server.config.app.state.assistant.retrieve(question)  # type: ignore[union-attr]
    ids = [s.source_id for s in found.sources]
    links = {ids[i]: ids[k] for i, k in found.following.items()}
    assert links.get("x1") == "x3" and "x3" not in links  # Bram's reply is not Rhea's; x4 is hours on

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)
    completion = client.chat.completions.create(model="openchat-extractive", messages=[{"role": "user", "content": question}])
    text = completion.choices[0].message.content or ""
    # The club is named only in the message after the one that matches the question.
    assert "signed with a new rowing club" in text and "The Thames Otters!" in text
    cited = {c["source_id"] for c in completion.model_extra["citations"]}
    assert {"x1", "x3"} <= cited and "x2" not in cited
    assert {c["contributor"] for c in completion.model_extra["openchat"]["credits"]} == {who}


def test_a_copy_wrapped_in_other_words_earns_the_copier_nothing(api: LiveServer) -> None:
    """Issue 16, copies at the level of word stretches: a sentence of an existing snippet wrapped in
    other words ("As experts note, <copy>, which surprised many.") is taken out of the copier's
    snippet, naming the original, and the answer about it pays the original contributor only."""
    entry = copy_earns_nothing(
        api, original=("The Marlow lighthouse keepers logged a record swell of fourteen metres in the gale of March 1911.",
                       "Their logbooks were later given to the county archive in Truro for safekeeping."),
        own="The Marlow harbour committee now rents the keepers' cottage to visiting painters every summer.",
        copy=("As experts note, the Marlow lighthouse keepers logged a record swell of fourteen metres in the gale, "
              "which surprised many."),
        title="Marlow lighthouse", find="Marlow lighthouse record swell gale",
        question="How high was the record swell the Marlow lighthouse keepers logged?", expected="fourteen")
    assert "similarity" not in entry


def test_a_reworded_copy_earns_the_copier_nothing(api: LiveServer) -> None:
    """Issue 16, copies no word run catches: a sentence of an existing snippet reworded (phrase moved,
    passive voice) with the same names and numbers is taken out of the copier's snippet, naming the
    original (with the cosine), and the answer about it pays the original contributor only."""
    entry = copy_earns_nothing(
        api, original=("The Brenner glacier lost forty metres of its tongue during the hot summer of 2003 alone.",
                       "Surveyors from Innsbruck have measured the ice front with the same brass chains since 1890."),
        own="Hikers in the valley below now cross a meadow where the ice stood a century ago.",
        copy="During the hot summer of 2003 alone, forty metres of its tongue were lost by the Brenner glacier.",
        title="Brenner glacier", find="Brenner glacier tongue summer 2003",
        question="How much of its tongue did the Brenner glacier lose in 2003?", expected="forty metres")
    assert PARAPHRASE_COSINE <= entry["similarity"] <= 1
