import io
import json

import pytest

from retrieval.readers import (
    BLOCK_CHARS,
    DatasetError,
    Row,
    RowError,
    RowLimits,
    check_text_file,
    detect_format,
    read_rows,
)


def rows(data: bytes, fmt: str, max_row_chars: int = 10_000, **limits: int) -> list[Row | RowError]:
    return list(read_rows(io.BytesIO(data), fmt, limits=RowLimits(text_chars=max_row_chars, **limits), name="f"))  # type: ignore[arg-type]


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


def test_text_without_blank_lines_is_cut_into_bounded_rows() -> None:
    # One paragraph of 1,000 lines: no break line anywhere, so only the row limit cuts it.
    data = ("A sentence about nothing in particular, repeated. " * 3 + "\n").encode() * 1000
    out = rows(data, "text", max_row_chars=10_000)
    assert all(isinstance(r, Row) for r in out)
    assert len(out) >= len(data) // 10_000
    assert all(len(r.text) <= 10_000 for r in out)  # type: ignore[union-attr]
    assert "".join(r.text for r in out).encode() == data  # type: ignore[union-attr]  # nothing lost
    assert [r.line for r in out] == sorted(r.line for r in out)  # type: ignore[union-attr]


def test_text_without_any_line_break_is_cut_between_words() -> None:
    words = [f"w{i}é" for i in range(20_000)]  # a two-byte character in every word
    data = " ".join(words).encode()
    out = rows(data, "text", max_row_chars=5_000)
    assert len(out) > 1 and all(isinstance(r, Row) and len(r.text) <= 5_000 for r in out)
    assert "".join(r.text for r in out).split() == words  # type: ignore[union-attr]  # no word cut in two


def test_markdown_without_headings_is_cut_into_bounded_rows() -> None:
    data = ("Plain prose with no heading at all. " * 20 + "\n").encode() * 200
    out = rows(data, "markdown", max_row_chars=8_000)
    assert len(out) >= len(data) // 8_000
    assert all(isinstance(r, Row) and len(r.text) <= 8_000 for r in out)


def test_markdown_fence_state_is_kept_across_the_block_size() -> None:
    # The fence opens before the first block is full and closes after: '# inside' is not a heading.
    body = ("filler line of prose\n" * (BLOCK_CHARS // 21 - 2)).encode()
    md = b"# Top\n" + body + b"```\n# inside\n" + b"x\n" * 10 + b"```\n# After\n\ntext\n"
    titles = [r.title for r in rows(md, "markdown", max_row_chars=10 * BLOCK_CHARS) if isinstance(r, Row)]
    assert "inside" not in titles and "After" in titles


def test_jsonl_line_longer_than_any_valid_row_is_skipped_unparsed() -> None:
    huge = json.dumps({"text": "x" * 100_000}).encode()
    data = huge + b"\n" + json.dumps({"text": "fine"}).encode()
    out = rows(data, "jsonl", max_row_chars=1_000, meta_chars=100, title_chars=50, id_chars=20)
    assert isinstance(out[0], RowError) and out[0].line == 1 and "longer than" in out[0].error
    assert out[1] == Row(2, "fine")


def test_jsonl_title_id_and_metadata_are_capped_naming_the_field() -> None:
    data = b"\n".join([
        json.dumps({"text": "a", "title": "t" * 51}).encode(),
        json.dumps({"text": "b", "id": "i" * 21}).encode(),
        json.dumps({"text": "c", "small": 1, "blob": "m" * 200}).encode(),
        json.dumps({"text": "d", "title": "t" * 50, "id": "i" * 20, "note": "n" * 50}).encode(),
    ])
    out = rows(data, "jsonl", meta_chars=100, title_chars=50, id_chars=20)
    bad = {r.line: r.error for r in out if isinstance(r, RowError)}
    assert "'title'" in bad[1] and "50" in bad[1]
    assert "'id'" in bad[2] and "20" in bad[2]
    assert "metadata" in bad[3] and "'blob'" in bad[3]
    assert out[3] == Row(4, "d", "i" * 20, "t" * 50, {"note": "n" * 50})


def test_csv_metadata_cap_and_a_record_too_long_stops_the_file() -> None:
    data = b"text,extra\nfine,x\ncapped," + b"m" * 300 + b'\n"' + b"q" * 5_000 + b'",y\nnever,z\n'
    out = rows(data, "csv", max_row_chars=1_000, meta_chars=100, title_chars=50, id_chars=20)
    assert out[0] == Row(2, "fine", None, None, {"extra": "x"})
    assert isinstance(out[1], RowError) and "'extra'" in out[1].error
    assert isinstance(out[2], RowError) and out[2].line == 4 and "rest of the file" in out[2].error
    assert len(out) == 3
