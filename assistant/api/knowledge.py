"""Knowledge-base routes: contribute snippets and data sets, follow their progress, search."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from assistant.api.ids import MAX_ID, RowId
from assistant.api.unicode_body import UnicodeRoute
from assistant.auth import Principal
from assistant.errors import ApiError
from assistant.payees import UnpayableAddress
from assistant.ratelimit import read_key, write_key
from assistant.snippets import SNIPPET_CHARS, preview
from retrieval.addresses import AddressError, checksum_address
from retrieval.intake import IntakeReport
from retrieval.knowledge import KnowledgeBase
from retrieval.readers import DatasetError, check_text_file, detect_format
from retrieval.said import MAX_SPEAKER_CHARS, MAX_TIMESTAMP_CHARS, parse_speaker, parse_timestamp
from retrieval.search import SearchResult
from retrieval.store import Filters

router = APIRouter(prefix="/v1", tags=["knowledge"], route_class=UnicodeRoute)
# A data set's file name is stored and titles its text and Markdown rows (ext4's limit).
MAX_FILENAME_CHARS = 255


async def knowledge(request: Request) -> KnowledgeBase:  # async: no thread hand-off for a read
    return request.app.state.knowledge


def _address(value: str, param: str = "contributor") -> str:
    try:
        return checksum_address(value)
    except AddressError as exc:
        raise ApiError(400, str(exc), "invalid_address", param) from None


def _payee(request: Request, value: str, param: str = "contributor") -> str:
    """A contribution's payout address: well-formed, and one the chain can ever pay."""
    address = _address(value, param)
    try:
        return request.app.state.payees.check(address)
    except UnpayableAddress as exc:
        raise ApiError(400, f"contributor {exc}; choose an address you hold the key of. Nothing was stored.",
                       "unpayable_address", param) from None


class SnippetIn(BaseModel):
    text: str = Field(min_length=1, description="The knowledge itself.")
    contributor: str = Field(description="EIP-55 payout address of the contributor.")
    title: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=2000, description="Where the text comes from (URL, book...).")
    licence: str | None = Field(default=None, max_length=200)
    speaker: str | None = Field(default=None, max_length=MAX_SPEAKER_CHARS,
                                description="Who said or wrote it (a chat message's speaker); searchable, named in answers.")
    timestamp: str | None = Field(default=None, max_length=MAX_TIMESTAMP_CHARS,
                                  description="When it was said or written, ISO 8601 (2023-05-08T13:56); relative "
                                              "dates in the text (\"yesterday\") are read against it.")

    @field_validator("speaker")
    @classmethod
    def _speaker(cls, value: str | None) -> str | None:
        return parse_speaker(value)

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        return parse_timestamp(value)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value


class ContributionOut(BaseModel):
    object: Literal["contribution"] = "contribution"
    id: int | None
    status: str
    rows: int
    rows_rejected: int
    chunks_stored: int
    chunks_duplicate: int
    chunks_near_duplicate: int
    errors: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    bytes_total: int
    bytes_done: int
    progress: float
    error: str | None = None

    @classmethod
    def of(cls, r: IntakeReport) -> ContributionOut:
        progress = 1.0 if r.status != "processing" else (r.bytes_done / r.bytes_total if r.bytes_total else 0.0)
        return cls(
            id=r.contribution_id, status=r.status, rows=r.rows, rows_rejected=r.rows_rejected,
            chunks_stored=r.chunks_stored, chunks_duplicate=r.chunks_duplicate,
            chunks_near_duplicate=r.chunks_near_duplicate, errors=r.errors, duplicates=r.duplicates,
            bytes_total=r.bytes_total, bytes_done=r.bytes_done, progress=round(progress, 4), error=r.error,
        )


@router.post("/contributions", status_code=201, response_model=ContributionOut)
async def contribute_snippet(
    body: SnippetIn,
    request: Request,
    kb: Annotated[KnowledgeBase, Depends(knowledge)],
    _: Annotated[Principal, Depends(write_key)],
) -> ContributionOut:
    """Add one snippet; an exact or near copy of stored text is refused with 409."""
    contributor = _payee(request, body.contributor)
    limit = kb.settings.max_snippet_chars
    if len(body.text) > limit:
        raise ApiError(413, f"text is longer than {limit} characters; upload it as a data set", "text_too_long", "text")
    report = await run_in_threadpool(kb.intake.add_snippet, contributor, body.text, body.title, body.source, body.licence,
                                     body.speaker, body.timestamp)
    if report.status == "refused":
        first = report.duplicates[0] if report.duplicates else {}
        origin = f" (chunk {first['chunk_id']})" if "chunk_id" in first else ""
        if first.get("kind") == "copied_sentence":
            # Every sentence that carries a fact was stored first by someone else: name them.
            origins = sorted({(d["chunk_id"], d.get("origin_contributor", "")) for d in report.duplicates
                              if d.get("kind") == "copied_sentence" and "chunk_id" in d})
            named = ", ".join(f"chunk {cid} by {who}" for cid, who in origins[:5])
            raise ApiError(409, f"every sentence of this text that carries a fact copies knowledge already contributed "
                                f"({named}); nothing was stored", "duplicate_content", "text")
        kind = "a near copy" if first.get("kind") == "near_duplicate" else "a copy"
        raise ApiError(409, f"this text is {kind} of knowledge already contributed{origin}; nothing was stored",
                       "duplicate_content", "text")
    return ContributionOut.of(report)


@router.post("/datasets", status_code=202, response_model=ContributionOut)
async def upload_dataset(
    request: Request,
    kb: Annotated[KnowledgeBase, Depends(knowledge)],
    _: Annotated[Principal, Depends(write_key)],
    file: Annotated[UploadFile, File(description="JSONL, CSV, Markdown or plain text, UTF-8.")],
    contributor: Annotated[str, Form()],
    format: Annotated[Literal["jsonl", "csv", "markdown", "text"] | None, Form()] = None,
    title: Annotated[str | None, Form(max_length=500)] = None,
    source: Annotated[str | None, Form(max_length=2000)] = None,
    licence: Annotated[str | None, Form(max_length=200)] = None,
    wait: Annotated[bool, Query(description="Answer when the data set is fully read, not at once.")] = False,
) -> JSONResponse:
    """Upload a data set; it is read in the background (poll GET /v1/datasets/{id}) unless wait=true."""
    address = _payee(request, contributor)
    if file.filename is not None and len(file.filename) > MAX_FILENAME_CHARS:
        raise ApiError(400, f"the file name is longer than {MAX_FILENAME_CHARS} characters", "filename_too_long", "file")
    try:
        fmt = detect_format(file.filename, format)
        head = await file.read(8192)
        check_text_file(head, fmt)
    except DatasetError as exc:
        raise ApiError(exc.status, str(exc), exc.code, "file") from None
    await file.seek(0)
    uploads: Path = kb.settings.uploads_dir
    uploads.mkdir(parents=True, exist_ok=True)
    size = file.size if file.size is not None else 0
    cid = await run_in_threadpool(kb.intake.open_dataset, address, file.filename or "upload", fmt, size, title, source, licence)
    path = uploads / f"{cid}.{fmt}"
    await run_in_threadpool(_copy, file, path)
    jobs = request.app.state.jobs
    future = jobs.submit(cid, path)
    if wait:
        await asyncio.wrap_future(future)
        return JSONResponse(ContributionOut.of(kb.intake.report(cid)).model_dump(), status_code=201)
    return JSONResponse(ContributionOut.of(kb.intake.report(cid)).model_dump(), status_code=202,
                        headers={"Location": f"/v1/datasets/{cid}"})


def _copy(upload: UploadFile, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)


@router.get("/datasets/{contribution_id}", response_model=ContributionOut)
@router.get("/contributions/{contribution_id}", response_model=ContributionOut)
async def contribution_status(contribution_id: RowId, kb: Annotated[KnowledgeBase, Depends(knowledge)]) -> ContributionOut:
    """What became of a contribution: progress while it is read, counts and reasons after."""
    try:
        return ContributionOut.of(await run_in_threadpool(kb.intake.report, contribution_id))
    except KeyError:
        raise ApiError(404, f"no contribution {contribution_id}", "not_found", "contribution_id") from None


class SearchFilters(BaseModel):
    contributor: str | None = None
    contribution_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class SearchIn(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(default=10, ge=1, le=100)
    filters: SearchFilters | None = None
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"


class SearchHit(BaseModel):
    chunk_id: int
    score: float
    snippet: str = Field(description=f"The chunk's opening: at most {SNIPPET_CHARS} characters and at most half "
                                     "the chunk (whitespace collapsed, cut at a word, '…' at the end). Search never "
                                     "returns contributed text whole; a paid answer reads it.")
    text_chars: int = Field(description="The whole chunk's length in characters.")
    title: str | None
    source_id: str | None
    contributor: str
    contribution_id: int
    speaker: str | None = None
    timestamp: str | None = None


class SearchOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchHit]


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, kb: Annotated[KnowledgeBase, Depends(knowledge)],
                 _: Annotated[Principal, Depends(read_key)]) -> SearchOut:
    """Hybrid (dense + BM25) search over the knowledge base, fused with RRF. Each hit shows its
    chunk's opening only (assistant.snippets): any key, even a zero balance, may search, but only a
    paid answer reads contributed text whole. Needs a key (the read budget bounds paging)."""
    f = body.filters or SearchFilters()
    filters = Filters(
        contributor=_address(f.contributor, "filters.contributor") if f.contributor else None,
        contribution_id=f.contribution_id,
    )
    results = await run_in_threadpool(kb.searcher.search, body.query, body.top_k, filters, body.mode)
    return SearchOut(data=[_hit(r) for r in results])


def _hit(r: SearchResult) -> SearchHit:
    return SearchHit(chunk_id=r.chunk_id, score=r.score, snippet=preview(r.text), text_chars=len(r.text),
                     title=r.title, source_id=r.source_id,
                     contributor=r.contributor, contribution_id=r.contribution_id, speaker=r.speaker,
                     timestamp=r.timestamp)
