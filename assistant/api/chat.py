"""OpenAI-compatible chat: /v1/chat/completions (plain and SSE), /v1/models, conversations, answers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from assistant.api.unicode_body import UnicodeRoute
from assistant.auth import Principal
from assistant.chat.bounds import check_messages, needs_tokens
from assistant.chat.orchestrator import AnswerRecord, Assistant, ChatRequest, Turn
from assistant.errors import ApiError, error_body
from assistant.ratelimit import chat_key, read_key, write_key

router = APIRouter(prefix="/v1", tags=["chat"], route_class=UnicodeRoute)
# Recording tasks of streams the client abandoned; held so they are not garbage-collected.
_background: set[asyncio.Task[object]] = set()


async def assistant(request: Request) -> Assistant:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off per request
    # (seen in profiles under load) for an attribute read.
    return request.app.state.assistant


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # Text is bounded in tokens (assistant.chat.bounds); a list of parts, in number too.
    content: str | Annotated[list[ContentPart], Field(max_length=256)] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        if any(p.type != "text" for p in self.content):
            raise ApiError(400, "only text content parts are supported", "unsupported_content", "messages")
        return "".join(p.text or "" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionIn(BaseModel):
    """OpenAI's chat request; unknown OpenAI parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=100_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int = Field(default=1, ge=1)
    # OpenAI's own limits: up to 4 stop sequences.
    stop: Annotated[str, Field(max_length=200)] | Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=4)] | None = None
    user: str | None = Field(default=None, max_length=256)
    conversation_id: str | None = Field(default=None, max_length=40, description="OpenChat: continue a stored conversation.")

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported")
        return value


def _citations(record: AnswerRecord) -> list[dict[str, Any]]:
    return [
        {"marker": c.marker, "chunk_id": c.chunk_id, "title": c.title, "snippet": c.snippet,
         "contributor": c.contributor, "source_id": c.source_id, "contribution_id": c.contribution_id,
         "weight_ppm": c.weight_ppm, "speaker": c.speaker, "timestamp": c.timestamp, "copied_by": c.copied_by}
        for c in record.citations
    ]


def _openchat(record: AnswerRecord) -> dict[str, Any]:
    return {
        "answer_id": record.id, "conversation_id": record.conversation_id, "answered": record.answered,
        "price": record.price, "credits": [{"contributor": c.contributor, "amount": c.amount} for c in record.credits],
        "price_breakdown": record.price_breakdown.as_json() if record.price_breakdown else None,
        "timing_ms": record.timing_ms,
    }


def _usage(record: AnswerRecord) -> dict[str, int]:
    return {"prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
            "total_tokens": record.prompt_tokens + record.completion_tokens}


def _chunk(turn: Turn, created: int, delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({
        "id": f"chatcmpl-{turn.id}", "object": "chat.completion.chunk", "created": created, "model": turn.request.model,
        "system_fingerprint": None, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    })


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionIn,
    svc: Annotated[Assistant, Depends(assistant)],
    principal: Annotated[Principal, Depends(chat_key)],
    request: Request,
) -> JSONResponse | EventSourceResponse:
    """Answer the last user message from the knowledge base, with verified citations."""
    every = [{"role": m.role, "content": m.text()} for m in body.messages]
    bounds = request.app.state.chat_bounds
    if needs_tokens(every, bounds):  # large messages: tokenizing them is CPU work, off the event loop
        await run_in_threadpool(check_messages, every, bounds, svc.count_tokens)
    else:
        check_messages(every, bounds, svc.count_tokens)
    messages = [m for m in every if m["role"] in ("system", "developer", "user", "assistant")]
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    req = ChatRequest(
        account=principal.account, model=body.model, messages=messages,
        max_tokens=body.max_completion_tokens or body.max_tokens, temperature=body.temperature, top_p=body.top_p,
        stop=stop, conversation_id=body.conversation_id,
    )
    if not body.stream:
        record = await svc.complete(req)
        return JSONResponse({
            "id": f"chatcmpl-{record.id}", "object": "chat.completion", "created": record.created, "model": record.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": record.text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(record), "citations": _citations(record), "openchat": _openchat(record),
        })

    turn = await svc.start(req)
    created = int(time.time())

    async def events() -> AsyncIterator[dict[str, str]]:
        finished = failed = False
        try:
            yield {"data": _chunk(turn, created, {"role": "assistant", "content": ""})}
            async for piece in turn.deltas:
                yield {"data": _chunk(turn, created, {"content": piece})}
            finished = True
            record = await turn.finish()
        except ApiError as exc:  # the provider failed after the stream began: say so in-band
            failed = True
            yield {"data": json.dumps(error_body(exc.status, exc.message, exc.code, exc.param))}
            return
        finally:
            if not finished:
                # A failed model call gives the held price back. A client that went away
                # mid-answer was still given what it was sent: record (and so pay for) that; with
                # nothing sent, give the price back. Shielded from the cancellation.
                settle = turn.finish() if turn.text_parts and not failed else turn.release()
                _background.add(task := asyncio.ensure_future(settle))
                task.add_done_callback(_background.discard)
        yield {"data": _chunk(turn, created, {}, "stop")}
        # OpenAI sends usage in a last chunk with no choices; ours also carries the extras.
        yield {"data": json.dumps({
            "id": f"chatcmpl-{record.id}", "object": "chat.completion.chunk", "created": created, "model": record.model,
            "system_fingerprint": None, "choices": [], "usage": _usage(record),
            "citations": _citations(record), "openchat": _openchat(record),
        })}
        yield {"data": "[DONE]"}

    # sse-starlette cuts streams the moment the server is told to stop; an answer stream is
    # short and finite, so let it finish within the server's own graceful-shutdown window.
    grace = max(request.app.state.settings.app.shutdown_grace_seconds - 1, 0)
    return EventSourceResponse(events(), ping=15, shutdown_grace_period=grace)


@router.get("/models")
async def list_models(svc: Annotated[Assistant, Depends(assistant)]) -> dict[str, Any]:
    """The built-in extractive responder and every configured litellm model."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "openchat"} for m in svc.models()]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, svc: Annotated[Assistant, Depends(assistant)]) -> dict[str, Any]:
    if model_id not in svc.models():
        raise ApiError(404, f"the model {model_id!r} does not exist", "model_not_found", "model")
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "openchat"}


@router.get("/conversations")
async def list_conversations(
    svc: Annotated[Assistant, Depends(assistant)],
    principal: Annotated[Principal, Depends(read_key)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The caller's conversations, most recent first."""
    rows = await run_in_threadpool(svc.conversations, principal.account, limit)  # off the event loop
    return {"object": "list", "data": [
        {"id": c.id, "object": "conversation", "title": c.title, "created_at": int(c.created_at.timestamp()),
         "updated_at": int(c.updated_at.timestamp())} for c in rows]}


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str,
    svc: Annotated[Assistant, Depends(assistant)],
    principal: Annotated[Principal, Depends(read_key)],
) -> dict[str, Any]:
    """One of the caller's conversations with its messages; someone else's is 404."""
    conv, messages = await run_in_threadpool(svc.conversation, principal.account, conversation_id)
    return {"id": conv.id, "object": "conversation", "title": conv.title, "created_at": int(conv.created_at.timestamp()),
            "updated_at": int(conv.updated_at.timestamp()),
            "messages": [{"role": m.role, "content": m.content, "answer_id": m.answer_id,
                          "created_at": int(m.created_at.timestamp())} for m in messages]}


class ConversationPatch(BaseModel):
    title: str = Field(min_length=1, max_length=200)

    @field_validator("title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title is blank")
        return value.strip()


@router.patch("/conversations/{conversation_id}")
async def rename_conversation(
    conversation_id: str,
    body: ConversationPatch,
    svc: Annotated[Assistant, Depends(assistant)],
    principal: Annotated[Principal, Depends(write_key)],
) -> dict[str, Any]:
    """Rename one of the caller's conversations."""
    conv = await run_in_threadpool(svc.rename_conversation, principal.account, conversation_id, body.title)
    return {"id": conv.id, "object": "conversation", "title": conv.title, "created_at": int(conv.created_at.timestamp()),
            "updated_at": int(conv.updated_at.timestamp())}


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(
    conversation_id: str,
    svc: Annotated[Assistant, Depends(assistant)],
    principal: Annotated[Principal, Depends(write_key)],
) -> dict[str, Any]:
    """Delete one of the caller's conversations from its lists; its answers stay (money records)."""
    await run_in_threadpool(svc.delete_conversation, principal.account, conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@router.get("/answers/{answer_id}")
async def get_answer(
    answer_id: str,
    svc: Annotated[Assistant, Depends(assistant)],
    principal: Annotated[Principal, Depends(read_key)],
) -> dict[str, Any]:
    """An answer and its cited sources: chunk, contributor, weight, credit and payout status
    (credited → batched → vouchered → settled, with the settling transaction)."""
    ans, rows, credits = await run_in_threadpool(svc.answer, principal.account, answer_id)
    by_contributor = {c["contributor"]: c for c in credits}
    per_source = source_amounts([((c.marker, c.chunk_id), c.contributor, c.weight_ppm) for c, _ in rows],
                                {who: c["amount"] for who, c in by_contributor.items()})

    def status(contributor: str) -> str:
        credit = by_contributor.get(contributor)
        return "not_credited" if credit is None else str(credit["status"])  # uncited, or free answers

    return {
        "id": ans.id, "object": "answer", "model": ans.model, "question": ans.question, "answer": ans.text,
        "answered": ans.answered, "conversation_id": ans.conversation_id, "price": ans.price,
        "created_at": int(ans.created_at.timestamp()),
        "usage": {"prompt_tokens": ans.prompt_tokens, "completion_tokens": ans.completion_tokens},
        "sources": [
            {"marker": c.marker, "chunk_id": c.chunk_id, "title": ch.title, "snippet": ch.text[:300],
             "source_id": ch.source_id, "speaker": ch.speaker, "timestamp": ch.said_at,
             "contributor": c.contributor, "weight_ppm": c.weight_ppm, "copied_by": c.copied_by,
             "credited_amount": per_source.get((c.marker, c.chunk_id)), "payout_status": status(c.contributor),
             "settlement_tx": (by_contributor.get(c.contributor) or {}).get("settlement_tx")}
            for c, ch in rows
        ],
        # Credits are per contributor (a contributor with two cited chunks is credited once):
        # payouts.views.answer_credits rows, each with its payout status.
        "credits": sorted(credits, key=lambda c: c["contributor"]),
    }


def source_amounts(sources: list[tuple[tuple[int, int], str, int]], credits: dict[str, int]) -> dict[tuple[int, int], int]:
    """Each cited row's share ((marker, chunk id) -> base units) of its contributor's credit: the
    credit split by the rows' weights with the ledger's own largest-remainder split, so the shares
    of a contributor sum exactly to the credit. Rows of uncredited contributors are left out."""
    from payouts.split import split

    out: dict[tuple[int, int], int] = {}
    for who, amount in credits.items():
        rows = {f"{m}:{cid}": ((m, cid), w) for (m, cid), contributor, w in sources if contributor == who and w > 0}
        if rows:
            parts = split(amount, {k: w for k, (_, w) in rows.items()})
            out.update((rows[k][0], part) for k, part in parts.items())
    return out
