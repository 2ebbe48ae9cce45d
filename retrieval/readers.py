"""Data-set readers: a file streamed as rows, each with its line number, or a row error.

Readers never hold more than one block of the file in memory, so a large upload is read
in bounded memory; a bad row becomes a ``RowError`` and reading goes on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser

from retrieval.said import parse_speaker, parse_timestamp

Format = Literal["jsonl", "csv", "markdown", "text"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "markdown", "text")
_EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
}
# Markdown and plain text are cut into blocks of about this size at section or paragraph
# boundaries, so a huge file never sits in memory whole.
BLOCK_CHARS = 64 * 1024


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    source_id: str | None = None
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    speaker: str | None = None  # who said or wrote it (retrieval.said)
    timestamp: str | None = None  # when, normalised ISO 8601


@dataclass(frozen=True)
class RowError:
    line: int
    error: str


class DatasetError(ValueError):
    """The file as a whole cannot be read (wrong type, empty, no text column...)."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_dataset") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def detect_format(filename: str | None, declared: str | None = None) -> Format:
    """The data set's format, from an explicit declaration or the file name's extension."""
    if declared:
        if declared not in FORMATS:
            raise DatasetError(f"unknown format {declared!r}; use one of {', '.join(FORMATS)}", 415, "unsupported_format")
        return declared  # type: ignore[return-value]
    suffix = Path(filename or "").suffix.lower()
    if suffix not in _EXTENSIONS:
        raise DatasetError(
            f"cannot tell the format of {filename!r}: use a .jsonl, .csv, .md or .txt file "
            "or pass format=jsonl|csv|markdown|text",
            415,
            "unsupported_format",
        )
    return _EXTENSIONS[suffix]


def check_text_file(head: bytes, fmt: Format | None = None) -> None:
    """Refuse empty and binary files, and a CSV without a 'text' column, before reading rows."""
    if not head.strip():
        raise DatasetError("the file is empty", 400, "empty_file")
    if b"\x00" in head:
        raise DatasetError("the file is not text (it contains NUL bytes)", 415, "unsupported_format")
    if fmt == "csv":
        first = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
        header = next(csv.reader([first]), [])
        if "text" not in [h.strip() for h in header]:
            raise DatasetError(f"the CSV header {header!r} has no 'text' column")


def read_rows(stream: BinaryIO, fmt: Format, *, max_row_chars: int, name: str | None = None) -> Iterator[Row | RowError]:
    """Rows of a data set, in file order."""
    readers = {"jsonl": _jsonl, "csv": _csv, "markdown": _markdown, "text": _text}
    yield from readers[fmt](stream, max_row_chars, name)


def _optional_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"'{name}' must be a string or an integer")
    return str(value)


def _row_from_record(line: int, record: dict[str, Any], max_row_chars: int) -> Row | RowError:
    text = record.get("text")
    if text is None:
        return RowError(line, "missing 'text'")
    if not isinstance(text, str):
        return RowError(line, "'text' must be a string")
    if not text.strip():
        return RowError(line, "'text' is empty")
    if len(text) > max_row_chars:
        return RowError(line, f"'text' is longer than {max_row_chars} characters")
    try:
        source_id = _optional_str(record.get("id"), "id")
        title = _optional_str(record.get("title"), "title")
        speaker = parse_speaker(record.get("speaker"))
        timestamp = parse_timestamp(record.get("timestamp"))
    except ValueError as exc:
        return RowError(line, str(exc))
    meta = {k: v for k, v in record.items() if k not in _FIELDS and v not in (None, "")}
    return Row(line, text, source_id, title, meta, speaker, timestamp)


# A row's own fields; every other key of a record is metadata.
_FIELDS = frozenset(["text", "id", "title", "speaker", "timestamp"])


def _jsonl(stream: BinaryIO, max_row_chars: int, name: str | None) -> Iterator[Row | RowError]:
    for line_no, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield RowError(line_no, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
            continue
        except json.JSONDecodeError as exc:
            yield RowError(line_no, f"malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            yield RowError(line_no, f"expected a JSON object, got {type(record).__name__}")
            continue
        yield _row_from_record(line_no, record, max_row_chars)


def _csv(stream: BinaryIO, max_row_chars: int, name: str | None) -> Iterator[Row | RowError]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_records(text, max_row_chars)
    finally:
        text.detach()  # the caller owns the binary stream; closing the wrapper would close it


def _csv_records(text: io.TextIOWrapper, max_row_chars: int) -> Iterator[Row | RowError]:
    csv.field_size_limit(max(max_row_chars, 1024) + 1)
    reader = csv.DictReader(text)
    try:
        header = reader.fieldnames
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text ({exc.reason})") from None
    if not header or "text" not in header:
        raise DatasetError(f"the CSV header {header!r} has no 'text' column")
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(start, f"malformed CSV: {exc}")
            start = reader.line_num + 1
            continue
        except UnicodeDecodeError as exc:
            # The decoder cannot resynchronise mid-file: report where it stopped.
            yield RowError(start, f"not UTF-8 text ({exc.reason}); the rest of the file was not read")
            return
        line, start = start, reader.line_num + 1
        if None in record:
            yield RowError(line, f"more fields than the header's {len(header)}")
            continue
        if all(not (v or "").strip() for v in record.values()):
            continue
        yield _row_from_record(line, dict(record), max_row_chars)


def _blocks(stream: BinaryIO, breaks_before: Any) -> Iterator[tuple[int, str] | RowError]:
    """Cut a text file into (first line, block) of about BLOCK_CHARS at allowed break lines."""
    lines: list[str] = []
    size = 0
    first = 1
    for line_no, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RowError(line_no, f"not UTF-8 text ({exc.reason} at byte {exc.start}); line skipped")
            continue
        if size >= BLOCK_CHARS and breaks_before(line):
            yield first, "".join(lines)
            lines, size, first = [], 0, line_no
        if not lines:
            first = line_no
        lines.append(line)
        size += len(line)
    if lines:
        yield first, "".join(lines)


def _markdown(stream: BinaryIO, max_row_chars: int, name: str | None) -> Iterator[Row | RowError]:
    parser = MarkdownNodeParser()
    in_fence = False

    def at_heading(line: str) -> bool:
        nonlocal in_fence
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        return not in_fence and line.startswith("#")

    for block in _blocks(stream, at_heading):
        if isinstance(block, RowError):
            yield block
            continue
        first, text = block
        for node in parser.get_nodes_from_documents([Document(text=text)]):
            body = node.get_content()
            if not body.strip():
                continue
            header = node.metadata.get("header_path", "").strip("/")
            title = _first_heading(body) or (header.split("/")[-1] if header else None) or name
            meta = {"header_path": "/" + header} if header else {}
            yield Row(first, body, None, title, meta)


def _first_heading(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
        if line.strip():
            return None
    return None


def _text(stream: BinaryIO, max_row_chars: int, name: str | None) -> Iterator[Row | RowError]:
    for block in _blocks(stream, lambda line: not line.strip()):
        if isinstance(block, RowError):
            yield block
            continue
        first, text = block
        if text.strip():
            yield Row(first, text, None, name, {})
