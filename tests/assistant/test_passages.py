"""A source as answers, citation checks and prompts read it: a message with its speaker and day, or plain text."""

from __future__ import annotations

import pytest

from assistant.chat.passages import Passage, as_passages

SUPPORT = "I went to a support group yesterday."
CAROLINE = Passage(SUPPORT, speaker="Caroline", timestamp="2023-05-08T13:56:00")
SPEAKER_ONLY = Passage(SUPPORT, speaker="Caroline")
TIME_ONLY = Passage(SUPPORT, timestamp="2023-05-08T13:56:00")
PLAIN = Passage("Paris is the capital of France.", title="Paris")


def test_message_with_speaker_and_time() -> None:
    assert CAROLINE.is_said
    assert CAROLINE.lead() == "Caroline said on 8 May 2023"
    assert CAROLINE.says(SUPPORT) == 'Caroline said on 8 May 2023: "I went to a support group yesterday (7 May 2023)."'
    assert CAROLINE.checkable() == CAROLINE.says(SUPPORT)


def test_message_marker_follows_the_closing_quote() -> None:
    assert CAROLINE.cited(SUPPORT, 1) == 'Caroline said on 8 May 2023: "I went to a support group yesterday (7 May 2023)." [1]'


def test_message_prompt_text_names_the_weekday() -> None:
    # A remote model reads the weekday too, so it can resolve "last Friday" itself.
    assert CAROLINE.prompt_text() == "[Caroline, Monday 8 May 2023] I went to a support group yesterday (7 May 2023)."


def test_message_with_speaker_only_resolves_no_dates() -> None:
    assert SPEAKER_ONLY.is_said and SPEAKER_ONLY.said is None
    assert SPEAKER_ONLY.lead() == "Caroline said"
    assert SPEAKER_ONLY.says(SUPPORT) == 'Caroline said: "I went to a support group yesterday."'
    assert SPEAKER_ONLY.cited(SUPPORT, 2) == 'Caroline said: "I went to a support group yesterday." [2]'
    assert SPEAKER_ONLY.checkable() == 'Caroline said: "I went to a support group yesterday."'
    assert SPEAKER_ONLY.prompt_text() == "[Caroline] I went to a support group yesterday."


def test_message_with_time_only() -> None:
    assert TIME_ONLY.is_said
    assert TIME_ONLY.lead() == "On 8 May 2023"
    assert TIME_ONLY.says(SUPPORT) == 'On 8 May 2023: "I went to a support group yesterday (7 May 2023)."'
    assert TIME_ONLY.cited(SUPPORT, 3) == 'On 8 May 2023: "I went to a support group yesterday (7 May 2023)." [3]'
    assert TIME_ONLY.prompt_text() == "[Monday 8 May 2023] I went to a support group yesterday (7 May 2023)."


def test_plain_text_is_unchanged() -> None:
    assert not PLAIN.is_said and PLAIN.said is None
    assert PLAIN.lead() == ""
    assert PLAIN.says(PLAIN.text) == PLAIN.text
    assert PLAIN.checkable() == PLAIN.text
    assert PLAIN.prompt_text() == PLAIN.text
    # A plain "yesterday" has no day to be read against.
    assert Passage(SUPPORT).says(SUPPORT) == SUPPORT


@pytest.mark.parametrize(
    ("sentence", "cited"),
    [
        ("Paris is the capital of France.", "Paris is the capital of France [1]."),
        ("Is Paris in France?", "Is Paris in France [1]?"),
        ("What a city!!", "What a city [1]!!"),
        ("It is called (the capital.)", "It is called (the capital [1].)"),
        ("No final stop", "No final stop [1]"),
    ],
)
def test_plain_text_marker_goes_before_the_final_punctuation(sentence: str, cited: str) -> None:
    assert PLAIN.cited(sentence, 1) == cited


def test_an_unreadable_stored_timestamp_is_treated_as_undated() -> None:
    p = Passage(SUPPORT, speaker="Caroline", timestamp="last Tuesday")
    assert p.said is None
    assert p.says(SUPPORT) == 'Caroline said: "I went to a support group yesterday."'


def test_an_unreadable_timestamp_without_a_speaker_reads_as_plain_text() -> None:
    p = Passage(SUPPORT, timestamp="last Tuesday")
    assert p.says(SUPPORT) == SUPPORT
    assert p.cited(SUPPORT, 1) == "I went to a support group yesterday [1]."


def test_as_passages_wraps_plain_strings_and_keeps_passages() -> None:
    assert as_passages(["Plain.", CAROLINE]) == [Passage("Plain."), CAROLINE]
    assert as_passages([]) == []
