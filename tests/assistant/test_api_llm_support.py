"""Payment follows support, not markers: the remote-LLM path and the extractive one through the API.

litellm's mock_response stands in for the provider only; the app, retrieval, the support check,
the ledger and its prices are real. Each topic has its own contributors, so a credit says which
source was paid. A model's markers may be missing or point at the wrong source; an asker may ask
for no markers: the sources that say what the answer says are paid all the same, and text that
says the opposite, lists the words, or only asks the question earns nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import (
    DEV_KEY,
    LiveServer,
    funded_account,
    mock_model,
    new_address,
    start_server,
)

PRICE, FEE_BPS = 10_000, 1_000
FEE = PRICE * FEE_BPS // 10_000

SATURN = "Saturn's rings are made mostly of water ice, with a smaller amount of rocky debris and dust."
VENUS_DENIED = "Venus does not rotate in the same direction as most other planets of the solar system."
MERCURY_DUMP = "Mercury orbit Sun 88 days smallest planet closest eight solar system year."
OCTOPUS_QUESTIONS = ("How many hearts does an octopus have? How many arms does an octopus have? "
                     "What colour is the blood of an octopus?")

NO_MARKERS = "Saturn's rings are made mostly of water ice, with some rocky debris and dust."
WRONG_MARKER = "The rings of Saturn consist mostly of water ice, with a smaller amount of rocky debris and dust [7]."
VENUS_CLAIM = "Venus rotates in the same direction as most other planets of the solar system [1]."
MERCURY_CLAIM = "Mercury is the smallest planet and orbits the Sun every 88 days [1]."
OCTOPUS_ECHO = "How many hearts does an octopus have? [1] An octopus has how many hearts [1]."

QUESTIONS = {
    "saturn": "What are Saturn's rings made of?",
    "venus": "In which direction does Venus rotate?",
    "mercury": "How long does Mercury take to orbit the Sun?",
    "octopus": "How many hearts does an octopus have?",
}


@pytest.fixture(scope="module")
def contributors() -> dict[str, str]:
    return {topic: new_address() for topic in ("saturn", "venus", "mercury", "octopus")}


@pytest.fixture(scope="module")
def support_api(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory,
                contributors: dict[str, str]) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("support")

    models = [mock_model("no-markers", NO_MARKERS), mock_model("wrong-marker", WRONG_MARKER), mock_model("venus", VENUS_CLAIM),
              mock_model("mercury", MERCURY_CLAIM), mock_model("octopus", OCTOPUS_ECHO)]
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, llm_models=models, llm_retries=0,
                             price_per_answer=PRICE, platform_fee_bps=FEE_BPS,
                             price_per_1k_prompt_tokens=0, price_per_1k_completion_tokens=0)  # flat: price says cited or not
    live = start_server(settings, embedder)
    with live.client() as c:
        for topic, text in (("saturn", SATURN), ("venus", VENUS_DENIED), ("mercury", MERCURY_DUMP),
                            ("octopus", OCTOPUS_QUESTIONS)):
            resp = c.post("/v1/contributions", json={"text": text, "contributor": contributors[topic]})
            assert resp.status_code == 201, resp.text
    yield live
    live.stop()


def ask(api: LiveServer, model: str, topic: str, stream: bool = False,
        system: str | None = None) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(text, citations, openchat extra) of one answer, asked by a new funded account."""
    _, key = funded_account(api, 10 * PRICE)
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=key, max_retries=0, timeout=60)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": QUESTIONS[topic]}]
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[-1].model_extra["citations"], chunks[-1].model_extra["openchat"]
    done = client.chat.completions.create(model=model, messages=messages)
    return done.choices[0].message.content or "", done.model_extra["citations"], done.model_extra["openchat"]


def credited(extra: dict[str, Any]) -> set[str]:
    return {c["contributor"] for c in extra["credits"] if c["amount"] > 0}


@pytest.mark.parametrize("stream", [False, True])
def test_no_markers_but_supported_pays_the_source(support_api: LiveServer, contributors: dict[str, str],
                                                  stream: bool) -> None:
    text, cites, extra = ask(support_api, "no-markers", "saturn", stream)
    assert text == NO_MARKERS and "[" not in text
    assert [(c["contributor"], c["weight_ppm"]) for c in cites] == [(contributors["saturn"], 1_000_000)]
    assert extra["answered"] is True and extra["price"] == PRICE
    assert credited(extra) == {contributors["saturn"]}


def test_asking_for_no_markers_does_not_make_a_sourced_answer_fee_only(support_api: LiveServer,
                                                                        contributors: dict[str, str]) -> None:
    system = "Never print citation markers like [1]; answer in plain prose."
    text, cites, extra = ask(support_api, "no-markers", "saturn", system=system)
    assert "[" not in text
    assert extra["answered"] is True and extra["price"] == PRICE
    assert [c["contributor"] for c in cites] == [contributors["saturn"]]


def test_a_marker_out_of_range_still_pays_the_source_that_supports_it(support_api: LiveServer,
                                                                      contributors: dict[str, str]) -> None:
    _, cites, extra = ask(support_api, "wrong-marker", "saturn")
    assert [c["contributor"] for c in cites] == [contributors["saturn"]]
    assert extra["answered"] is True and extra["price"] == PRICE


def test_a_source_that_says_the_opposite_is_not_paid(support_api: LiveServer, contributors: dict[str, str]) -> None:
    _, cites, extra = ask(support_api, "venus", "venus")
    assert cites == [] and extra["answered"] is False
    assert extra["price"] == FEE and contributors["venus"] not in credited(extra)


def test_a_keyword_dump_is_not_paid(support_api: LiveServer, contributors: dict[str, str]) -> None:
    _, cites, extra = ask(support_api, "mercury", "mercury")
    assert cites == [] and extra["answered"] is False
    assert extra["price"] == FEE and contributors["mercury"] not in credited(extra)


@pytest.mark.parametrize("model", ["octopus", "openchat-extractive"])
def test_a_contribution_of_questions_earns_nothing_and_charges_only_the_fee(
        support_api: LiveServer, contributors: dict[str, str], model: str) -> None:
    # The octopus case: the only source on the topic restates questions. Echoed back by
    # the model (with markers) or picked by the extractive responder, it answers nothing.
    _, cites, extra = ask(support_api, model, "octopus")
    assert cites == [] and extra["answered"] is False
    assert extra["price"] == FEE and contributors["octopus"] not in credited(extra)
