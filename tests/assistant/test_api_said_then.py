"""A question that names a day reads the messages said then: a search by time beside the first
retrieval step, through the API and the official openai SDK, for the extractive model and a
remote model's prompt alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, mock_model, new_address, start_server

# Messages that match "which tournament did Nate win" better than the one that answers it, said
# later in the same month (so the words of their day, "Nate, 20 November 2022", match the question
# as well as its own do): the plain search (top_k 1: five results) never reaches that one.
WON = [
    ("2022-11-15T18:00", "I won my first video game tournament and I could not believe I won the tournament."),
    ("2022-11-16T18:00", "I won a tournament again, the regional tournament, and winning it was a rush."),
    ("2022-11-17T18:00", "I won the spring tournament and the win felt great, best tournament so far."),
    ("2022-11-18T18:00", "I won the summer tournament, another tournament win for me this year."),
    ("2022-11-20T18:00", "I won my fourth video game tournament on Friday, my fourth tournament win."),
    ("2022-11-22T18:00", "I won a charity tournament, and I gave the tournament winnings away."),
    ("2022-11-24T18:00", "I won the autumn tournament too, the tournament went all my way."),
    ("2022-11-26T18:00", "I won a tournament in the city, my tournament team won every round."),
    ("2022-11-28T18:00", "I won the tournament with my friends, we won the whole tournament."),
    ("2022-11-30T18:00", "I won a big tournament, the biggest tournament win I have had."),
]
NOVEMBER = ("2022-11-07T18:00", "Crazy thing happened, I was in the final of a big Valorant tournament last Saturday, and I won!")
QUESTION = "Which tournament did Nate win in the week before 8 November 2022?"
LLM_ANSWER = "Nate won the final of a big Valorant tournament [1]."


@pytest.fixture(scope="module")
def said_api(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("said-then")
    models = [mock_model("mock-gpt", LLM_ANSWER)]
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chat_top_k=1, llm_models=models, llm_retries=0)
    live = start_server(settings, embedder)
    nate = new_address()
    with live.client() as c:
        for when, text in [*WON, NOVEMBER]:
            resp = c.post("/v1/contributions", json={"text": text, "contributor": nate, "speaker": "Nate", "timestamp": when})
            assert resp.status_code == 201, resp.text
    yield live
    live.stop()


def sdk(api: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)


def first_step_texts(api: LiveServer, question: str) -> list[str]:
    found = api.server.config.app.state.assistant.retrieve(question)  # type: ignore[union-attr]
    return [s.text for s in found.sources[:found.first]]


def test_a_named_month_reads_the_messages_said_then(said_api: LiveServer) -> None:
    assert NOVEMBER[1] not in first_step_texts(said_api, "Which tournament did Nate win?")
    assert NOVEMBER[1] in first_step_texts(said_api, QUESTION)
    # A day the messages were not said on adds nothing said on another day.
    assert NOVEMBER[1] not in first_step_texts(said_api, "Which tournament did Nate win in January 2021?")


def test_the_extractive_answer_quotes_the_message_said_then(said_api: LiveServer) -> None:
    resp = sdk(said_api).chat.completions.create(model="openchat-extractive", messages=[{"role": "user", "content": QUESTION}])
    text = resp.choices[0].message.content or ""
    assert text.startswith('Nate said on 7 November 2022: "Crazy thing happened, I was in the final of a big Valorant tournament'), text
    cited = [c["snippet"] for c in (resp.model_extra or {})["citations"]]
    assert any("Valorant" in s for s in cited), cited


def test_a_remote_model_gets_the_message_said_then_in_its_prompt(said_api: LiveServer) -> None:
    resp = sdk(said_api).chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": QUESTION}])
    citations = (resp.model_extra or {})["citations"]
    # The mock cites [1]; the citation check keeps it only if source 1 says it, so the November
    # message reached the prompt (and was first there).
    assert [c["snippet"] for c in citations if "Valorant" in c["snippet"]], citations
