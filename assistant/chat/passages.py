"""A retrieved source as the answer layer reads it: its text, title, and who said it when.

The speaker and time of a message are part of what it says ("I ran a 5K yesterday", said by Maria
on 8 May 2023, says that Maria ran a 5K on 7 May 2023). Every reader of a source (the extractive
responder, the citation check, an LLM's prompt) sees them through the forms defined here, so
they agree on what a source says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from assistant.chat.dates import annotate
from retrieval.said import day_text, moment


@dataclass(frozen=True)
class Passage:
    """One source: text, and when known its title, speaker and ISO 8601 timestamp."""

    text: str
    title: str | None = None
    speaker: str | None = None
    timestamp: str | None = None
    hop: int = 1  # 2: found by a second retrieval step, read only to complete an answer; 3: see ``next``
    # The marker of the source that holds this speaker's next message of the same exchange (0 when
    # none): an answer that quotes this message reads on into that one (retrieval.exchanges). Such
    # a source that no search found has hop 3: it is read only as the continuation of its message.
    next: int = 0

    @property
    def said(self) -> datetime | None:
        try:
            return moment(self.timestamp)
        except ValueError:  # stored before validation existed: treat as undated
            return None

    @property
    def is_said(self) -> bool:
        """Whether this is someone's message (it has a speaker or a time), not plain text."""
        return bool(self.speaker or self.said)

    def lead(self) -> str:
        """"Maria said on 8 May 2023", "Maria said", "On 8 May 2023" or "" (plain text)."""
        said = self.said
        day = day_text(said) if said else None
        if self.speaker and day:
            return f"{self.speaker} said on {day}"
        if self.speaker:
            return f"{self.speaker} said"
        return f"On {day}" if day else ""

    def says(self, sentence: str) -> str:
        """A sentence of this passage as an answer states it: quoted after its speaker and day,
        relative dates resolved ('Maria said on 8 May 2023: "I ran a 5K yesterday (7 May 2023)."')."""
        if not self.is_said:
            return sentence
        # The quotation must read as one: a double quote inside becomes a single one, and it
        # ends as a sentence ends, so a message closing on "[shares a photo: ...]" does not run
        # into the next quotation (citations.quotation_units reads answers by quotations).
        quoted = annotate(sentence, self.said).replace('"', "'").replace("“", "'").replace("”", "'").rstrip()
        if not re.search(r"[.!?]['’)]*$", quoted):
            quoted += "."
        return f'{self.lead()}: "{quoted}"'

    def cited(self, sentence: str, marker: int) -> str:
        """The sentence as an answer states it, with its citation marker: before the final
        punctuation of plain text ("... France [1]."), after a quoted message's closing quote."""
        if self.is_said:
            return f"{self.says(sentence)} [{marker}]"
        match = re.search(r"([.!?]+[\"'”’)]*)$", sentence)
        if match:
            return f"{sentence[: match.start()]} [{marker}]{match.group(1)}"
        return f"{sentence} [{marker}]"

    def checkable(self) -> str:
        """What the passage says, in the form citation checks compare answers with: the text,
        after its speaker and day, relative dates resolved."""
        return self.says(self.text) if self.is_said else self.text

    def prompt_text(self) -> str:
        """The passage as a remote LLM reads it: the message after who said it and when."""
        said = self.said
        if not self.is_said:
            return self.text
        when = f"{said:%A} {day_text(said)}" if said else None
        head = ", ".join(p for p in (self.speaker, when) if p)
        return f"[{head}] {annotate(self.text, said)}"


def as_passages(sources: Sequence[str | Passage]) -> list[Passage]:
    """Plain strings become passages without a title, speaker or time."""
    return [s if isinstance(s, Passage) else Passage(s) for s in sources]
