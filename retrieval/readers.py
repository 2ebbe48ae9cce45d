"""Data-set readers: a file streamed as rows, each with its line number, or a row error.

Readers never hold more than one block of the file in memory, so a large upload is read
in bounded memory; a bad row becomes a ``RowError`` and reading goes on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser

from retrieval.row_limits import RowLimits
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
# Text and Markdown are read in pieces of at most this many bytes, so a file without a line break
# never sits in memory whole either.
PIECE_BYTES = 64 * 1024
# JSON escapes a character in at most 6 bytes (\uXXXX): a JSONL line longer than 6x a record's
# characters cannot hold a row within the limits, and is skipped without being parsed.
JSON_BYTES_PER_CHAR = 6


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


def read_rows(stream: BinaryIO, fmt: Format, *, limits: RowLimits, name: str | None = None) -> Iterator[Row | RowError]:
    """Rows of a data set, in file order, each within ``limits``."""
    readers = {"jsonl": _jsonl, "csv": _csv, "markdown": _markdown, "text": _text}
    yield from readers[fmt](stream, limits, name)


def _optional_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"'{name}' must be a string or an integer")  # noqa: TRY004 - readers report ValueErrors as row errors
    return str(value)


def _row_from_record(line: int, record: dict[str, Any], limits: RowLimits) -> Row | RowError:
    text = record.get("text")
    if text is None:
        return RowError(line, "missing 'text'")
    if not isinstance(text, str):
        return RowError(line, "'text' must be a string")
    if not text.strip():
        return RowError(line, "'text' is empty")
    if len(text) > limits.text_chars:
        return RowError(line, f"'text' is longer than {limits.text_chars} characters")
    try:
        source_id = _optional_str(record.get("id"), "id")
        title = _optional_str(record.get("title"), "title")
        speaker = parse_speaker(record.get("speaker"))
        timestamp = parse_timestamp(record.get("timestamp"))
    except ValueError as exc:
        return RowError(line, str(exc))
    if source_id is not None and len(source_id) > limits.id_chars:
        return RowError(line, f"'id' is longer than {limits.id_chars} characters")
    if title is not None and len(title) > limits.title_chars:
        return RowError(line, f"'title' is longer than {limits.title_chars} characters")
    meta = {k: v for k, v in record.items() if k not in _FIELDS and v not in (None, "")}
    if meta:
        sizes = {k: len(k) + len(_compact(v)) for k, v in meta.items()}
        if sum(sizes.values()) > limits.meta_chars:
            largest = max(sizes, key=lambda k: sizes[k])
            return RowError(line, f"metadata (fields other than text, id, title, speaker, timestamp) is longer than "
                                  f"{limits.meta_chars} characters of JSON; its largest field is {largest[:100]!r} "
                                  f"({sizes[largest]} characters)")
    return Row(line, text, source_id, title, meta, speaker, timestamp)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# A row's own fields; every other key of a record is metadata.
_FIELDS = frozenset(["text", "id", "title", "speaker", "timestamp"])


def _jsonl(stream: BinaryIO, limits: RowLimits, name: str | None) -> Iterator[Row | RowError]:
    limit = JSON_BYTES_PER_CHAR * limits.record_chars
    for line_no, raw in _bounded_lines(stream, limit):
        if raw is None:
            yield RowError(line_no, f"the line is longer than {limit} bytes, more than a row within the limits "
                                    f"('text' up to {limits.text_chars} characters) can take; line skipped")
            continue
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
        yield _row_from_record(line_no, record, limits)


def _bounded_lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) of a binary stream; None for a line longer than ``limit`` bytes, which
    is skipped while it is read, never held whole."""
    line_no = 0
    while raw := stream.readline(limit + 1):
        line_no += 1
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield line_no, raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = stream.readline(limit + 1)
        yield line_no, None


class _RecordTooLong(Exception):
    """A CSV record ran past the characters a row within the limits can have."""


def _csv(stream: BinaryIO, limits: RowLimits, name: str | None) -> Iterator[Row | RowError]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_records(text, limits)
    finally:
        text.detach()  # the caller owns the binary stream; closing the wrapper would close it


def _csv_records(text: io.TextIOWrapper, limits: RowLimits) -> Iterator[Row | RowError]:
    csv.field_size_limit(max(limits.record_chars, 1024) + 1)
    budget = limits.record_chars
    taken = 0

    def lines() -> Iterator[str]:
        # The csv module holds a record whole (and a list of its fields): every line it is given
        # counts against one record's budget, reset after each record.
        nonlocal taken
        while line := text.readline(budget + 1):
            taken += len(line)
            if taken > budget:
                raise _RecordTooLong
            yield line

    reader = csv.DictReader(lines())
    try:
        header = reader.fieldnames
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text ({exc.reason})") from None
    except _RecordTooLong:
        raise DatasetError(f"the CSV header is longer than {budget} characters") from None
    if not header or "text" not in header:
        raise DatasetError(f"the CSV header {header!r} has no 'text' column")
    start = reader.line_num + 1
    while True:
        taken = 0
        try:
            record = next(reader)
        except StopIteration:
            return
        except _RecordTooLong:
            # A quoted field may hold line breaks, so there is no safe place to pick up again.
            yield RowError(start, f"the record is longer than {budget} characters, more than a row within the "
                                  f"limits ('text' up to {limits.text_chars} characters) can take; the rest of the "
                                  "file was not read")
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
        yield _row_from_record(line, dict(record), limits)


def _pieces(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bool, str] | RowError]:
    """(line number, whether it starts a line, text) of a text file in pieces of at most about
    ``max_bytes`` characters: whole lines, and a longer line cut after a space where it has one."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line_no, starts, carry = 1, True, ""
    while True:
        raw = stream.readline(max_bytes)
        ends = raw.endswith(b"\n")
        try:
            text = decoder.decode(raw, final=ends or not raw)
        except UnicodeDecodeError as exc:
            decoder.reset()
            while raw and not ends:  # the rest of the line goes with it
                raw = stream.readline(max_bytes)
                ends = raw.endswith(b"\n")
            yield RowError(line_no, f"not UTF-8 text ({exc.reason}); line skipped")
            line_no, starts, carry = line_no + 1, True, ""
            continue
        if not raw:
            if carry:
                yield line_no, starts, carry
            return
        text, carry = carry + text, ""
        if not ends:
            cut = max(text.rfind(" "), text.rfind("\t"))
            if cut > len(text) // 2:  # a word cut in two would be two wrong words
                text, carry = text[: cut + 1], text[cut + 1:]
        yield line_no, starts, text
        starts = ends
        line_no += ends


def _blocks(stream: BinaryIO, breaks_before: Any, max_chars: int) -> Iterator[tuple[int, str] | RowError]:
    """Cut a text file into (first line, block) of about BLOCK_CHARS at allowed break lines, and
    never more than ``max_chars``: a file without break lines (or line breaks) is cut anyway."""
    lines: list[str] = []
    size = 0
    first = 1
    for piece in _pieces(stream, max(1, min(PIECE_BYTES, max_chars // 2))):
        if isinstance(piece, RowError):
            yield piece
            continue
        line_no, starts, text = piece
        at_break = starts and breaks_before(text)  # called on every line: it may keep state
        if lines and ((size >= BLOCK_CHARS and at_break) or size + len(text) > max_chars):
            yield first, "".join(lines)
            lines, size = [], 0
        if not lines:
            first = line_no
        lines.append(text)
        size += len(text)
    if lines:
        yield first, "".join(lines)


def _markdown(stream: BinaryIO, limits: RowLimits, name: str | None) -> Iterator[Row | RowError]:
    parser = MarkdownNodeParser()
    in_fence = False

    def at_heading(line: str) -> bool:
        nonlocal in_fence
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        return not in_fence and line.startswith("#")

    for block in _blocks(stream, at_heading, limits.text_chars):
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
            # Headings are the file's own text, not fields anyone chose: cut, never refused.
            meta = {"header_path": ("/" + header)[: limits.meta_chars]} if header else {}
            yield Row(first, body, None, title[: limits.title_chars] if title else None, meta)


def _first_heading(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
        if line.strip():
            return None
    return None


def _text(stream: BinaryIO, limits: RowLimits, name: str | None) -> Iterator[Row | RowError]:
    for block in _blocks(stream, lambda line: not line.strip(), limits.text_chars):
        if isinstance(block, RowError):
            yield block
            continue
        first, text = block
        if text.strip():
            yield Row(first, text, None, name[: limits.title_chars] if name else None, {})
