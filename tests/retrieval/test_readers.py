import io
import json

import pytest

from retrieval.readers import (
    BLOCK_CHARS,
    DatasetError,
    Row,
    RowError,
    check_text_file,
    detect_format,
    read_rows,
)


def rows(data: bytes, fmt: str, max_row_chars: int = 10_000) -> list[Row | RowError]:
    return list(read_rows(io.BytesIO(data), fmt, max_row_chars=max_row_chars, name="f"))  # type: ignore[arg-type]


def test_jsonl_rows_errors_and_metadata() -> None:
    data = b"\n".join([
        json.dumps({"id": "a1", "title": "T", "text": "First.", "year": 2020}).encode(),
        b"{not json",
        json.dumps({"title": "no text"}).encode(),
        b"",
        json.dumps({"text": "   "}).encode(),
        json.dumps(["a list"]).encode(),
        json.dumps({"text": 5}).encode(),
        json.dumps({"id": 7, "text": "Second."}).encode(),
        b"\xff\xfe broken",
        json.dumps({"id": {"x": 1}, "text": "bad id"}).encode(),
    ])
    out = rows(data, "jsonl")
    good = [r for r in out if isinstance(r, Row)]
    bad = {r.line: r.error for r in out if isinstance(r, RowError)}
    assert good[0] == Row(1, "First.", "a1", "T", {"year": 2020})
    assert good[1].source_id == "7" and good[1].line == 8
    assert set(bad) == {2, 3, 5, 6, 7, 9, 10}
    assert "malformed JSON" in bad[2]
    assert bad[3] == "missing 'text'"
    assert "empty" in bad[5]
    assert "JSON object" in bad[6]
    assert "string" in bad[7]
    assert "UTF-8" in bad[9]
    assert "'id'" in bad[10]


def test_jsonl_row_too_long() -> None:
    out = rows(json.dumps({"text": "x" * 50}).encode(), "jsonl", max_row_chars=10)
    assert isinstance(out[0], RowError) and "longer" in out[0].error


def test_csv_line_numbers_follow_quoted_newlines() -> None:
    data = b'id,text,title\n1,"multi\nline text",A\n2,,B\n3,third,C\n4,x,y,extra\n'
    out = rows(data, "csv")
    assert out[0] == Row(2, "multi\nline text", "1", "A", {})
    assert isinstance(out[1], RowError) and out[1].line == 4
    assert out[2] == Row(5, "third", "3", "C", {})
    assert isinstance(out[3], RowError) and out[3].line == 6 and "more fields" in out[3].error


def test_csv_without_text_column_is_refused() -> None:
    with pytest.raises(DatasetError, match="'text' column"):
        rows(b"a,b\n1,2\n", "csv")


def test_markdown_sections_get_their_heading_as_title() -> None:
    md = b"# Cells\n\nCells are small.\n\n## Mitochondria\n\nThey make ATP.\n\n```\n# not a heading\n```\n"
    out = rows(md, "markdown")
    assert [r.title for r in out if isinstance(r, Row)] == ["Cells", "Mitochondria"]
    assert "# not a heading" in out[-1].text  # type: ignore[union-attr]


def test_text_streams_in_blocks() -> None:
    para = ("word " * 200 + "\n\n").encode()
    data = para * (3 * BLOCK_CHARS // len(para))
    out = rows(data, "text")
    assert len(out) >= 3
    assert all(isinstance(r, Row) and len(r.text) < 2 * BLOCK_CHARS for r in out)
    assert out[1].line > out[0].line  # type: ignore[union-attr]


def test_format_detection_and_file_checks() -> None:
    assert detect_format("a.JSONL") == "jsonl"
    assert detect_format("x.bin", "csv") == "csv"
    with pytest.raises(DatasetError) as err:
        detect_format("a.pdf")
    assert err.value.status == 415
    with pytest.raises(DatasetError, match="empty"):
        check_text_file(b"  \n")
    with pytest.raises(DatasetError, match="not text"):
        check_text_file(b"PK\x03\x04\x00\x00")


def test_jsonl_speaker_and_timestamp_are_row_fields_not_metadata() -> None:
    record = {"id": "m1", "text": "I went to a support group yesterday.", "speaker": "  Caroline ",
              "timestamp": "2023-05-08T13:56", "session": 3, "empty": ""}
    out = rows(json.dumps(record).encode(), "jsonl")
    assert out == [Row(1, "I went to a support group yesterday.", "m1", None, {"session": 3},
                       speaker="Caroline", timestamp="2023-05-08T13:56:00")]


def test_jsonl_row_without_speaker_or_timestamp_has_none() -> None:
    out = rows(json.dumps({"text": "Plain knowledge.", "speaker": None, "timestamp": ""}).encode(), "jsonl")
    assert out == [Row(1, "Plain knowledge.")]


def test_jsonl_bad_timestamp_or_speaker_is_a_row_error_on_its_line() -> None:
    data = b"\n".join([
        json.dumps({"text": "Fine.", "speaker": "Maria", "timestamp": "2023-05-08"}).encode(),
        json.dumps({"text": "When?", "speaker": "Maria", "timestamp": "last Tuesday"}).encode(),
        json.dumps({"text": "Who?", "speaker": 42}).encode(),
        json.dumps({"text": "Also fine."}).encode(),
    ])
    out = rows(data, "jsonl")
    bad = {r.line: r.error for r in out if isinstance(r, RowError)}
    assert set(bad) == {2, 3}
    assert "'last Tuesday' is not ISO 8601" in bad[2]
    assert "'speaker'" in bad[3]
    # The rows around the bad ones are kept.
    assert [r.line for r in out if isinstance(r, Row)] == [1, 4]


def test_csv_speaker_and_timestamp_columns() -> None:
    data = (b"text,speaker,timestamp,topic\n"
            b"I painted a lake.,Melanie,2023-05-08T14:02,art\n"
            b"Plain fact.,,,\n"
            b"Bad time.,Melanie,not a time,art\n")
    out = rows(data, "csv")
    assert out[0] == Row(2, "I painted a lake.", None, None, {"topic": "art"}, "Melanie", "2023-05-08T14:02:00")
    assert out[1] == Row(3, "Plain fact.")
    assert isinstance(out[2], RowError) and out[2].line == 4 and "not ISO 8601" in out[2].error
