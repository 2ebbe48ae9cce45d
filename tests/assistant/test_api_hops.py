"""The second retrieval step through the API: a bridge's second source reaches the extractive
answer and a remote model's prompt, both through the official openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from assistant.chat.compose import follow_ups
from assistant.chat.orchestrator import passage
from assistant.chat.shapes import shape
from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, mock_model, new_address, start_server

NOVEL = ("The Glass Orchard", "The Glass Orchard is a 1958 novel by Mira Penhallow about a family of lens grinders.")
AUTHOR = ("Mira Penhallow", "Mira Penhallow was born in Truro in 1921 and later taught drawing in Falmouth.")
# Sources that match the question's words as well as the author's page does: the first step
# (one source, plus short ones up to its word budget) may or may not reach her page.
DISTRACTORS = [
    ("Glass Orchard radio play", "The Glass Orchard was adapted as a radio play in 1962."),
    ("Glass Orchard prize", "The Glass Orchard won a regional prize for fiction in 1959."),
    ("Glass orchard sculpture", "A glass orchard is a garden of blown glass trees."),
    ("Glass Orchard first edition", "The Glass Orchard's first edition had a green cloth cover."),
    ("Glass Orchard in Welsh", "The Glass Orchard was translated into Welsh in 1970."),
    ("Glass Orchard sales", "The Glass Orchard sold well in its first year in print."),
]
QUESTION = "Where was the author of The Glass Orchard born?"
# The model cites every number it might have been given; the citation check keeps the sources
# that say what the sentence says, so the author's page is kept only if it was in the prompt.
LLM_ANSWER = "The Glass Orchard is a 1958 novel by Mira Penhallow [1]. Mira Penhallow was born in Truro in 1921 [2][3][4][5][6]."


@pytest.fixture(scope="module")
def hops_api(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("hops")
    models = [mock_model("mock-gpt", LLM_ANSWER)]
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chat_top_k=1, llm_models=models, llm_retries=0)
    live = start_server(settings, embedder)
    with live.client() as c:
        for title, text in [NOVEL, AUTHOR, *DISTRACTORS]:
            resp = c.post("/v1/contributions", json={"text": text, "title": title, "contributor": new_address()})
            assert resp.status_code == 201, resp.text
    yield live
    live.stop()


def sdk(api: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)


def test_the_second_step_searches_for_the_bridged_name(hops_api: LiveServer) -> None:
    assistant = hops_api.server.config.app.state.assistant  # type: ignore[union-attr]
    found = assistant.retrieve(QUESTION)
    sources = found.sources
    passages = [passage(s) for s in sources[:found.first]]
    queries = follow_ups(assistant.extractive.rank(QUESTION, passages), passages, QUESTION, shape(QUESTION))
    # The novel's source names its author; her own source is searched for by name when the
    # first step did not bring it.
    named = any(p.title == "Mira Penhallow" for p in passages)
    assert named or any(q.endswith("Mira Penhallow") for q in queries), (queries, [p.title for p in passages])
    assert any(s.title == "Mira Penhallow" for s in sources)


def test_a_bridge_answers_with_both_sources(hops_api: LiveServer) -> None:
    completion = sdk(hops_api).chat.completions.create(model="openchat-extractive",
                                                        messages=[{"role": "user", "content": QUESTION}])
    text = completion.choices[0].message.content or ""
    cites = {c["title"]: c for c in completion.model_extra["citations"]}
    assert "Truro" in text, text
    assert {"The Glass Orchard", "Mira Penhallow"} <= set(cites), cites
    # Both contributors earn: each cited sentence carries its share.
    assert cites["The Glass Orchard"]["weight_ppm"] > 0 and cites["Mira Penhallow"]["weight_ppm"] > 0
    assert sum(c["weight_ppm"] for c in cites.values()) == 1_000_000


def test_a_remote_model_gets_the_second_source_in_its_prompt(hops_api: LiveServer) -> None:
    completion = sdk(hops_api).chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": QUESTION}])
    cites = {c["title"] for c in completion.model_extra["citations"]}
    assert "Mira Penhallow" in cites, completion.model_extra["citations"]


# A bridge whose follow-up query, the question plus the bridged name, finds the first step's
# pages again before the bridged one: the team's pages share every word of the question.
TEAM = ("Harrow Kestrels women's rowing", ("The Harrow Kestrels women's rowing team represents the University of Harrow "
        "in all NCAA Division I rowing competitions. The team competes in the Saltmarsh Coast Conference."))
TEAM_PAGES = [
    ("2010–11 Harrow Kestrels women's rowing team", ("The 2010–11 Harrow Kestrels women's rowing team won four of "
     "its six regattas under head coach Ada Brill, whose eight set a course record on the Wensum.")),
    ("2012–13 Harrow Kestrels women's rowing team", ("In 2012–13 the Harrow Kestrels women's rowing team moved its "
     "boathouse to Lowestoft and finished second at the autumn head race with a crew led by Maud Fenn.")),
    ("2014–15 Harrow Kestrels women's rowing team", ("The Harrow Kestrels women's rowing team of 2014–15 lost its "
     "opening race by two seats, then went unbeaten through April, captained by Ilse Varga.")),
    ("2016–17 Harrow Kestrels women's rowing team", ("For the Harrow Kestrels women's rowing team, 2016–17 brought a "
     "new shell named Curlew and a regional title, its first since 1994.")),
    ("2018–19 Harrow Kestrels women's rowing team", ("The 2018–19 Harrow Kestrels women's rowing team raced at "
     "Henley for the first time and sent three rowers to the national trials.")),
]
CONFERENCE = ("Saltmarsh Coast Conference", ("The Saltmarsh Coast Conference is a collegiate athletic league of nine "
              "schools. It was called the Fenland Athletic League from 1971 to 1990."))
TEAM_QUESTION = "The Harrow Kestrels women's rowing team competes in a conference that was formerly known as what?"


@pytest.fixture(scope="module")
def teams_api(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("teams"), dev_api_key=DEV_KEY, chat_top_k=1)
    live = start_server(settings, embedder)
    with live.client() as c:
        for title, text in [TEAM, *TEAM_PAGES, CONFERENCE]:
            resp = c.post("/v1/contributions", json={"text": text, "title": title, "contributor": new_address()})
            assert resp.status_code == 201, resp.text
    yield live
    live.stop()


def test_the_second_step_reads_past_the_pages_the_first_step_found(teams_api: LiveServer) -> None:
    assistant = teams_api.server.config.app.state.assistant  # type: ignore[union-attr]
    found = assistant.retrieve(TEAM_QUESTION)
    first = [s.title for s in found.sources[:found.first]]
    assert "Saltmarsh Coast Conference" not in first, first  # else there is no second step to check
    assert "Saltmarsh Coast Conference" in [s.title for s in found.sources[found.first:found.searched]], first
    completion = sdk(teams_api).chat.completions.create(model="openchat-extractive",
                                                        messages=[{"role": "user", "content": TEAM_QUESTION}])
    text = completion.choices[0].message.content or ""
    assert "Fenland Athletic League" in text, text
    assert {"Harrow Kestrels women's rowing", "Saltmarsh Coast Conference"} <= {c["title"] for c in completion.model_extra["citations"]}
