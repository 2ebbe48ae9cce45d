"""How large a data set's row and its fields may be (no heavy imports: settings use it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowLimits:
    """How large a data set's row and its fields may be (``OPENCHAT_MAX_ROW_CHARS`` and friends).

    Text and Markdown rows are cut to ``text_chars``; a JSONL or CSV row over a limit is a row
    error naming the field. Metadata (a record's other fields) is counted as compact JSON: it is
    stored with every chunk of its row.
    """

    text_chars: int = 200_000
    title_chars: int = 500
    id_chars: int = 256
    meta_chars: int = 4096

    @property
    def record_chars(self) -> int:
        """The most characters a whole JSONL/CSV record within the limits can have (speaker,
        timestamp and syntax fit in the last 1,024)."""
        return self.text_chars + self.title_chars + self.id_chars + self.meta_chars + 1024
