"""One answer, start to finish: question -> search -> responder or LLM -> citations -> record.

The HTTP layer calls ``Assistant.start`` (which fails fast, before any byte is streamed, on an
unknown model, a bad request or a provider that refuses the call), streams ``Turn.deltas``,
then calls ``Turn.finish`` to check the citations and record everything in one transaction.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from assistant.chat import citations as cit
from assistant.chat.compose import FOLLOW_UP_RESULTS, follow_ups
from assistant.chat.dates import asked_window
from assistant.chat.extractive import MODEL_ID as EXTRACTIVE_MODEL
from assistant.chat.extractive import ExtractiveResponder
from assistant.chat.ledger import AnswerLedger, Credit, LedgerAnswer, PriceBreakdown, TokenBudget
from assistant.chat.llm import Delta, LlmGateway, provider_error
from assistant.chat.passages import Passage
from assistant.chat.prompt import HistoryTooLong, PromptSource, build_prompt
from assistant.chat.shapes import shape
from assistant.db import write_session
from assistant.errors import ApiError
from assistant.models import Answer, Citation, Conversation, Message
from assistant.snippets import snippet
from retrieval.exchanges import next_messages
from retrieval.first_writers import Quote, first_writers
from retrieval.knowledge import KnowledgeBase
from retrieval.lexical import analyse
from retrieval.models import Chunk
from retrieval.origin import MAX_ORIGIN_CHUNKS
from retrieval.search import Searcher, SearchResult
from retrieval.store import Filters

# The first retrieval step reads at least top_k sources, and more up to this many words (about
# five short encyclopedia paragraphs), at most top_k times the factor ...
SOURCE_WORDS = 400
SHORT_SOURCES_FACTOR = 5
# ... or up to this many (forty chat messages) when the top_k are short: at most
# SHORT_SOURCE_WORDS words each on average (a chat message, a note; a paragraph is longer).
# Measured on locomo-dev's even half (chat messages): (400 words, 3 x top_k) answer recall 0.339,
# gold-token recall 0.587, no-answer 0.475; (600, 4) 0.347, 0.599, 0.467; (800, 5) 0.350, 0.598,
# 0.475. Reading 800 words of any sources cost squad2-dev-5 (paragraphs of ~120 words, split into
# chunks with short tails) answer recall 0.821 -> 0.800 and citation precision 0.940 -> 0.918.
SHORT_SOURCES_WORDS = 800
SHORT_SOURCE_WORDS = 60
# A question that names a day, a month or a year ("in January 2024") also reads up to this many
# sources said then (a search by time, best first): the words it shares with the message it asks
# about may be too few for that message to make the first step among all the others.
DATED_RESULTS = 10
T = TypeVar("T")

# Built once (see payouts.ledger: building a statement per answer cost more than running it).
_INSERT_CONVERSATION = insert(Conversation)
_INSERT_ANSWER = insert(Answer)
_INSERT_MESSAGES = insert(Message)
_INSERT_CITATIONS = insert(Citation)


@dataclass(frozen=True)
class ChatRequest:
    account: str
    model: str
    messages: list[dict[str, str]]  # role, content (text only), the last one the user's
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    conversation_id: str | None = None


@dataclass(frozen=True)
class CitationOut:
    marker: int
    chunk_id: int
    title: str | None
    snippet: str
    contributor: str
    source_id: str | None
    contribution_id: int
    weight_ppm: int
    speaker: str | None = None
    timestamp: str | None = None
    # Set on a chunk credited for words source ``marker`` (this chunk id) copied from it first.
    copied_by: int | None = None


@dataclass
class AnswerRecord:
    id: str
    model: str
    text: str
    conversation_id: str
    created: int
    answered: bool
    prompt_tokens: int
    completion_tokens: int
    price: int
    credits: list[Credit]
    citations: list[CitationOut]
    timing_ms: dict[str, float]
    price_breakdown: PriceBreakdown | None = None


@dataclass
class Turn:
    """An answer in progress: stream ``deltas`` to the client, then ``finish`` it."""

    assistant: Assistant
    request: ChatRequest
    id: str
    question: str
    sources: list[SearchResult]
    deltas: AsyncIterator[str]
    started: float
    retrieval_ms: float
    prompt_tokens: int = 0
    completion_tokens: int | None = None
    text_parts: list[str] = field(default_factory=list)
    model_ms: float = 0.0

    async def finish(self) -> AnswerRecord:
        """Record the answer; its record settles the price held when it started."""
        return await self.assistant.in_thread(self.assistant._finish, self)

    async def release(self) -> None:
        """Give the held price back: the answer was not given (a failed model call)."""
        await self.assistant.in_thread(self.assistant._release, self.id)


@dataclass(frozen=True)
class Found:
    """What retrieval found for a question: the first step's sources, then a second step's, then
    the next messages of the first step's messages that no step found (``retrieval.exchanges``)."""

    sources: list[SearchResult]
    first: int  # how many the first step found
    searched: int  # how many the two steps found; the rest are next messages
    following: dict[int, int] = field(default_factory=dict)  # source index -> its next message's index

    def passages(self) -> list[Passage]:
        """The sources as the answer layer reads them, each with its step and next message."""
        return [passage(s, 1 if i < self.first else 2 if i < self.searched else 3,
                        self.following[i] + 1 if i in self.following else 0)
                for i, s in enumerate(self.sources)]


@dataclass(frozen=True)
class _Prepared:
    """What ``Assistant._prepare`` found: the sources and, for the extractive model, the answer."""

    sources: list[SearchResult]
    retrieval_ms: float
    text: str | None = None
    model_ms: float = 0.0


def _now() -> float:
    return time.perf_counter()


class Assistant:
    """Answers questions from the knowledge base and records every answer."""

    def __init__(self, kb: KnowledgeBase, engine: Engine, gateway: LlmGateway, ledger: AnswerLedger,
                 top_k: int = 5, default_max_tokens: int = 512, cpu_slots: int = 4, max_tokens: int = 4096,
                 history_tokens: int = 4096) -> None:
        self.kb = kb
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.gateway = gateway
        self.ledger = ledger
        self.top_k = top_k
        self.default_max_tokens = default_max_tokens
        # A metered answer holds the price of its prompt plus max_tokens of completion before the
        # model is called: both are bounded, so is the most an answer can cost (and be held).
        self.max_tokens = max_tokens
        self.history_tokens = history_tokens
        self.extractive = ExtractiveResponder(kb.embedder)
        # Same index, but through the caching embedder: the question is embedded once.
        self.searcher = Searcher(kb.index, self.extractive.vectors)
        self._slots = anyio.CapacityLimiter(cpu_slots)
        # Token counts of the extractive "model": the same chunks come back answer after answer,
        # and tokenizing them again was ~7% of the API's GIL time under load.
        self._token_count = functools.lru_cache(maxsize=4096)(lambda text: len(kb.embedder.token_ids(text)))

    def count_tokens(self, text: str) -> int:
        """The embedder's word pieces in ``text`` (not cached: requests' texts rarely repeat)."""
        return len(self.kb.embedder.token_ids(text))

    def models(self) -> list[str]:
        return [EXTRACTIVE_MODEL] + [m for m in self.gateway.models() if m != EXTRACTIVE_MODEL]

    async def start(self, req: ChatRequest) -> Turn:
        """Check the request, retrieve sources and start the model; errors raise ``ApiError``."""
        self._check_request(req)
        question = req.messages[-1]["content"].strip()
        query = search_query(req.messages)
        started = _now()
        # One thread hop for the checks, the search and (extractive) the answer: every hop is
        # event-loop work (limiter, hand-off, wake-up), which showed in profiles under load.
        answer_id = f"ans_{uuid.uuid4().hex}"
        prep = await self.in_thread(self._prepare, req, query, answer_id)
        if prep.text is not None:
            turn = Turn(self, req, answer_id, question, prep.sources, _empty(), started, prep.retrieval_ms)
            turn.deltas = _collect(_words(prep.text), turn)
            turn.model_ms = prep.model_ms
            return turn
        try:
            return await self._start_llm(req, answer_id, question, prep.sources, started, prep.retrieval_ms)
        except BaseException:
            await self.in_thread(self._release, answer_id)  # the model never started: nothing given
            raise

    async def complete(self, req: ChatRequest) -> AnswerRecord:
        """A whole answer, not streamed: ``start``, every delta, ``finish``.

        The extractive model's answer is known as soon as its sources are, so its checks,
        search, answer and record run in one thread hop (the API's most frequent request).
        """
        if req.model != EXTRACTIVE_MODEL:
            turn = await self.start(req)
            try:
                async for _ in turn.deltas:
                    pass
            except BaseException:
                await turn.release()  # the model failed: the held price goes back
                raise
            return await turn.finish()
        self._check_request(req)
        question = req.messages[-1]["content"].strip()
        query = search_query(req.messages)
        started = _now()
        answer_id = f"ans_{uuid.uuid4().hex}"

        def answer() -> AnswerRecord:
            prep = self._prepare(req, query, answer_id)
            turn = Turn(self, req, answer_id, question, prep.sources, _empty(), started, prep.retrieval_ms,
                        text_parts=[prep.text or ""], model_ms=prep.model_ms)
            try:
                return self._finish(turn)
            except BaseException:
                self._release(answer_id)
                raise

        return await self.in_thread(answer)

    def _check_request(self, req: ChatRequest) -> None:
        if req.model not in self.models():
            raise ApiError(404, f"the model {req.model!r} does not exist; GET /v1/models lists the models", "model_not_found", "model")
        if not req.messages or req.messages[-1]["role"] != "user" or not req.messages[-1]["content"].strip():
            raise ApiError(400, "the last message must be a non-empty user message: the question", "invalid_messages", "messages")
        if req.max_tokens is not None and req.max_tokens > self.max_tokens:
            raise ApiError(400, f"max_tokens (or max_completion_tokens) is {req.max_tokens}: at most {self.max_tokens}",
                           "max_tokens_too_large", "max_tokens")

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a sync stage of an answer in a worker thread, at most ``cpu_slots`` at a time.

        The stages are CPU work under the GIL (search, responder, citations, recording): more
        of them at once only makes each slower, and a thread holding SQLite's write lock then
        waits its turn for the GIL behind all the others, which lengthened every write
        transaction (and with it everyone's wait for the lock).
        """
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._slots)

    def _prepare(self, req: ChatRequest, query: str, answer_id: str) -> _Prepared:
        if req.conversation_id is not None:
            self._check_conversation(req.account, req.conversation_id)
        # 402 before any search or LLM call, and before any byte. A remote model's answer holds
        # its completion's worst case now and its prompt's once the prompt is built.
        budget = None if req.model == EXTRACTIVE_MODEL else TokenBudget(0, self._max_tokens(req))
        self._hold(req.account, answer_id, budget)
        try:
            return self._retrieve_and_answer(req, query)
        except BaseException:
            self._release(answer_id)
            raise

    def _retrieve_and_answer(self, req: ChatRequest, query: str) -> _Prepared:
        t0 = _now()
        found = self.retrieve(query)
        t1 = _now()
        if req.model != EXTRACTIVE_MODEL:
            return _Prepared(found.sources, (t1 - t0) * 1000)
        text = self.extractive.answer(query, found.passages()).text
        return _Prepared(found.sources, (t1 - t0) * 1000, text, (_now() - t1) * 1000)

    def retrieve(self, query: str) -> Found:
        """The sources for a question: the search's top results, and when the question needs a
        second source (two things compared, or an entity the first source names) the top results
        of a second step for each (``compose.follow_ups``), after the first ones; then the next
        message of each first-step message, when its speaker went on (``retrieval.exchanges``)."""
        # A source that states nothing (only questions, greetings or thanks: "How long have you
        # been creating art?") cannot answer, so it takes no place another source could fill.
        found = [s for s in self.searcher.search(query, self.top_k * SHORT_SOURCES_FACTOR)
                 if self.extractive.states_anything(s.text)]
        # Short sources (chat messages) carry a fact each: more of them fit the same reading as
        # top_k paragraphs, so the first step keeps going until SOURCE_WORDS words, and further
        # (SHORT_SOURCES_WORDS) when the best sources are short ones: a sixth paragraph is one
        # more rival sentence set, a sixth message often the fact itself.
        sources = found[: self.top_k]
        words = sum(len(s.text.split()) for s in sources)
        budget = SHORT_SOURCES_WORDS if words <= SHORT_SOURCE_WORDS * len(sources) else SOURCE_WORDS
        for s in found[self.top_k:]:
            if words >= budget:
                break
            sources.append(s)
            words += len(s.text.split())
        sources += self._said_then(query, {s.chunk_id for s in sources})
        self._read_sentence_vectors(sources)
        passages = [passage(s) for s in sources]
        form = shape(query)
        ranking = self.extractive.rank(query, passages) if form.kind == "single" else None
        seen = {s.chunk_id for s in sources}
        # A follow-up repeats the question's words, so its best results are often the first
        # step's again ("The Vermont Catamounts men's soccer team ... America East Conference"
        # finds the team's pages first): it reads past as many results as the first step holds.
        depth = self.top_k + len(seen)
        for follow_up in follow_ups(ranking, passages, query, form):
            added = 0
            for s in self.searcher.search(follow_up, depth):
                if s.chunk_id not in seen and added < FOLLOW_UP_RESULTS:
                    sources.append(s)
                    seen.add(s.chunk_id)
                    added += 1
        self._read_sentence_vectors(sources[len(passages):])
        searched = len(sources)
        following: dict[int, int] = {}
        with self.sessions() as session:
            nexts = next_messages(session, sources[: len(passages)])
        at = {s.chunk_id: i for i, s in enumerate(sources)}
        for i, s in enumerate(sources[: len(passages)]):
            nxt = nexts.get(s.chunk_id)
            if nxt is None:
                continue
            if nxt.chunk_id not in at:
                at[nxt.chunk_id] = len(sources)
                sources.append(nxt)
            following[i] = at[nxt.chunk_id]
        return Found(sources, len(passages), searched, following)

    def _said_then(self, query: str, seen: set[int]) -> list[SearchResult]:
        """The best sources said in the days the question names (``dates.asked_window``) that
        are not among ``seen``; none when it names none."""
        window = asked_window(query)
        if window is None:
            return []
        said_from, said_before = window.said_range()
        # Dense only: the lexical sidecar keeps no timestamps (retrieval.store.Filters).
        hits = self.searcher.search(query, DATED_RESULTS * SHORT_SOURCES_FACTOR,
                                    Filters(said_from=said_from, said_before=said_before), mode="dense")
        fresh = [s for s in hits if s.chunk_id not in seen and self.extractive.states_anything(s.text)]
        return fresh[:DATED_RESULTS]

    def _read_sentence_vectors(self, sources: Sequence[SearchResult]) -> None:
        """Hand the responder the sentence vectors stored at ingest for these sources: it then
        embeds only the question (a chunk stored before they existed is embedded as before)."""
        store = self.kb.sentence_vectors
        if store is None or not sources:
            return
        texts, found = store.read(s.chunk_id for s in sources)
        if texts:
            self.extractive.vectors.put(texts, found)

    def _max_tokens(self, req: ChatRequest) -> int:
        return req.max_tokens or self.default_max_tokens

    async def _start_llm(self, req: ChatRequest, answer_id: str, question: str, sources: list[SearchResult],
                         started: float, retrieval_ms: float) -> Turn:
        gateway = self.gateway
        max_tokens = self._max_tokens(req)
        budget = gateway.context_window(req.model) - max_tokens
        if budget <= 0:
            raise ApiError(400, "max_tokens leaves no room for the prompt in the model's context window", "invalid_max_tokens", "max_tokens")
        psources = [PromptSource(i, s.title, passage(s).prompt_text()) for i, s in enumerate(sources, start=1)]
        try:
            prompt = await run_in_threadpool(
                build_prompt, req.messages, psources, lambda msgs: gateway.count_tokens(req.model, msgs), budget,
                None, self.history_tokens,
            )
        except HistoryTooLong as exc:
            raise ApiError(400, str(exc), "history_too_long", "messages") from exc
        if prompt.prompt_tokens > budget:
            raise ApiError(400, "the question alone does not fit in the model's context window", "context_length_exceeded", "messages")
        # The worst case, held before the model is called: 402 here costs no provider call.
        await self.in_thread(self._hold, req.account, answer_id, TokenBudget(prompt.prompt_tokens, max_tokens))
        params: dict[str, Any] = {"max_tokens": max_tokens}
        for name in ("temperature", "top_p", "stop"):
            if getattr(req, name) is not None:
                params[name] = getattr(req, name)
        t0 = _now()
        stream = await gateway.stream(req.model, prompt.messages, **params)
        sources = sources[: len(prompt.sources)]
        turn = Turn(self, req, answer_id, question, sources, _empty(), started, retrieval_ms, prompt.prompt_tokens)

        async def deltas() -> AsyncIterator[str]:
            async for d in _timed(stream, turn, t0):
                if d.prompt_tokens is not None:
                    turn.prompt_tokens = d.prompt_tokens
                    turn.completion_tokens = d.completion_tokens
                elif d.text:
                    yield d.text

        turn.deltas = _collect(deltas(), turn)
        return turn

    # ---- recording ------------------------------------------------------------------
    def _hold(self, account: str, answer_id: str, budget: TokenBudget | None = None) -> None:
        # The price is held before anything is delivered: of N answers started at once against
        # a balance for k, k are held and the others get 402 before their first byte.
        with write_session(self.sessions) as session:
            self.ledger.hold(session, account, answer_id, budget)

    def _release(self, answer_id: str) -> None:
        with write_session(self.sessions) as session:
            self.ledger.release(session, answer_id)

    def _check_conversation(self, account: str, conversation_id: str) -> None:
        with self.sessions() as session:
            _own_conversation(session, account, conversation_id)

    def _finish(self, turn: Turn) -> AnswerRecord:
        text = "".join(turn.text_parts)
        req = turn.request
        t0 = _now()
        embed = self.extractive.vectors.get
        # Checked against what each source says with its speaker and day ("Maria said on ...").
        attribution = cit.attribute(text, [passage(s).checkable() for s in turn.sources], turn.question, embed)
        prompt_tokens, completion_tokens = turn.prompt_tokens, turn.completion_tokens or 0
        if req.model == EXTRACTIVE_MODEL:
            # The extractive "model" reads through the embedder's tokenizer: count with it.
            count = self._token_count
            prompt_tokens = count(turn.question) + sum(count(s.text) for s in turn.sources)
            completion_tokens = count(text)
        elif not completion_tokens:
            completion_tokens = self.gateway.count_tokens(req.model, [{"role": "assistant", "content": text}])
        cited = self._credited(turn, attribution)
        by_contributor: dict[str, int] = {}
        for c in cited:
            by_contributor[c.contributor] = by_contributor.get(c.contributor, 0) + c.weight_ppm
        now = datetime.now(UTC)
        conversation_id = req.conversation_id or f"conv_{uuid.uuid4().hex}"
        history = ([m for m in req.messages if m["role"] in ("user", "assistant")] if req.conversation_id is None
                   else [req.messages[-1]])
        messages = [{"conversation_id": conversation_id, "role": m["role"], "content": m["content"], "answer_id": None,
                     "created_at": now} for m in history]
        messages.append({"conversation_id": conversation_id, "role": "assistant", "content": text, "answer_id": turn.id,
                         "created_at": now})
        citations = [{"answer_id": turn.id, "marker": c.marker, "chunk_id": c.chunk_id, "contributor": c.contributor,
                      "weight_ppm": c.weight_ppm, "copied_by": c.copied_by} for c in cited]
        # One transaction: answer, citations, debit, credits. Everything is computed before it
        # and the rows go in as Core inserts, not through the ORM unit of work: on SQLite
        # every answer waits for the one before it to commit, so its length is the API's ceiling.
        with write_session(self.sessions) as session:
            conn = session.connection()
            if req.conversation_id is None:
                conn.execute(_INSERT_CONVERSATION, {"id": conversation_id, "account": req.account,
                                                    "title": _title(turn.question), "created_at": now, "updated_at": now})
            else:
                conv = session.get(Conversation, conversation_id)
                assert conv is not None and conv.account == req.account
                conv.updated_at = now
            entry = self.ledger.record(
                session,
                LedgerAnswer(turn.id, req.account, req.model, prompt_tokens, completion_tokens, len(cited),
                             metered=req.model != EXTRACTIVE_MODEL),
                by_contributor,
            )
            conn.execute(_INSERT_ANSWER, {
                "id": turn.id, "account": req.account, "conversation_id": conversation_id, "model": req.model,
                "question": turn.question, "text": text, "answered": bool(cited), "price": entry.price,
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "created_at": now})
            conn.execute(_INSERT_MESSAGES, messages)
            if citations:
                conn.execute(_INSERT_CITATIONS, citations)
        record_ms = (_now() - t0) * 1000
        total_ms = (_now() - turn.started) * 1000
        return AnswerRecord(
            id=turn.id, model=req.model, text=text, conversation_id=conversation_id, created=int(now.timestamp()),
            answered=bool(cited), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            price=entry.price, credits=entry.credits, citations=cited, price_breakdown=entry.breakdown,
            timing_ms={"retrieval": round(turn.retrieval_ms, 2), "model": round(turn.model_ms, 2),
                       "citations_and_record": round(record_ms, 2),
                       "overhead": round(total_ms - turn.model_ms, 2), "total": round(total_ms, 2)},
        )

    def _credited(self, turn: Turn, attribution: cit.Attribution) -> list[CitationOut]:
        """The cited sources with their weights, each stretch paid to whoever wrote it first.

        An answer sentence credited to a source that carries a run of words an older chunk of
        another contributor wrote first pays that part to the older chunk
        (``retrieval.first_writers``), listed under the same marker with ``copied_by``.
        """
        def out(m: int, s: SearchResult | Chunk, weight: int, copied_by: int | None = None) -> CitationOut:
            if isinstance(s, Chunk):
                return CitationOut(m, s.id, s.title, snippet(s.text), s.contributor, s.source_id, s.contribution_id,
                                   weight, s.speaker, s.said_at, copied_by)
            return CitationOut(m, s.chunk_id, s.title, snippet(s.text), s.contributor, s.source_id,
                               s.contribution_id, weight, s.speaker, s.timestamp, copied_by)

        shares = attribution.shares
        pairs = [(i, m) for i, per_marker in shares.items() for m in per_marker]
        texts = {s.index: s.text for s in attribution.sentences}
        quotes = [Quote(texts[i], turn.sources[m - 1].chunk_id, turn.sources[m - 1].contributor) for i, m in pairs]
        with self.sessions() as session:
            # BM25 finds the older chunk of a copied run that winnowing kept no fingerprint of.
            found = first_writers(session, quotes, self._lexical_ids)
            writers = {w.chunk_id for f in found for w in f.writers}
            chunks = {c.id: c for c in session.scalars(select(Chunk).where(Chunk.id.in_(writers)))} if writers else {}
        # Only writers read back are paid (all of them: chunks are never deleted), so the weights
        # always sum to the whole.
        taken = {pair: (f.words, {w.chunk_id: w.words for w in f.writers if w.chunk_id in chunks})
                 for pair, f in zip(pairs, found) if any(w.chunk_id in chunks for w in f.writers)}
        if not taken:
            return [out(m, turn.sources[m - 1], w) for m, w in sorted(attribution.weights.items())]
        listed = {s.chunk_id: m for m, s in enumerate(turn.sources, 1)}
        weights = cit.first_writer_weights(shares, taken, listed)
        return [out(m, turn.sources[m - 1], w) if writer is None else out(m, chunks[writer], w, turn.sources[m - 1].chunk_id)
                for (m, writer), w in sorted(weights.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))]

    def _lexical_ids(self, text: str) -> list[int]:
        """The chunks BM25 ranks best for ``text``: ids only, from the sidecar when there is one
        (a sparse search through the store would also read every hit's payload)."""
        index = self.kb.index
        if index.sidecar is not None:
            return [cid for cid, _ in index.lexical(analyse(text), MAX_ORIGIN_CHUNKS, Filters())]
        return [s.chunk_id for s in self.searcher.search(text, MAX_ORIGIN_CHUNKS, mode="sparse")]

    # ---- reading --------------------------------------------------------------------
    def conversations(self, account: str, limit: int = 50) -> list[Conversation]:
        with self.sessions() as session:
            rows = session.scalars(select(Conversation).where(Conversation.account == account,
                                                              Conversation.deleted_at.is_(None))
                                   .order_by(Conversation.updated_at.desc()).limit(limit))
            return list(rows)

    def conversation(self, account: str, conversation_id: str) -> tuple[Conversation, list[Message]]:
        with self.sessions() as session:
            conv = _own_conversation(session, account, conversation_id)
            messages = list(session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)))
            return conv, messages

    def rename_conversation(self, account: str, conversation_id: str, title: str) -> Conversation:
        with self.sessions.begin() as session:
            conv = _own_conversation(session, account, conversation_id)
            conv.title = title
            return conv

    def delete_conversation(self, account: str, conversation_id: str) -> None:
        """Soft delete: the conversation leaves the lists; its answers (money records) stay."""
        with self.sessions.begin() as session:
            _own_conversation(session, account, conversation_id).deleted_at = datetime.now(UTC)

    def answer(self, account: str, answer_id: str) -> tuple[Answer, list[tuple[Citation, Any]], list[dict[str, Any]]]:
        """An answer of ``account``, its citations with their chunks, and the ledger's credits for
        it with their payout status (``payouts.views.answer_credits``; none when answers are free)."""
        from payouts.views import answer_credits

        with self.sessions() as session:
            ans = session.get(Answer, answer_id)
            if ans is None or ans.account != account:
                raise ApiError(404, f"no answer {answer_id}", "not_found", "answer_id")
            rows = session.execute(select(Citation, Chunk).join(Chunk, Chunk.id == Citation.chunk_id)
                                   .where(Citation.answer_id == answer_id).order_by(Citation.marker)).all()
            return ans, [(c, ch) for c, ch in rows], answer_credits(session, answer_id)


def _own_conversation(session: Session, account: str, conversation_id: str) -> Conversation:
    """The account's live conversation, or 404 (someone else's or a deleted one looks the same)."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or conv.account != account or conv.deleted_at is not None:
        raise ApiError(404, f"no conversation {conversation_id}", "not_found", "conversation_id")
    return conv


_REFERRING = re.compile(r"\b(?:it|its|he|him|his|she|her|they|them|their|this|that|these|those|there|then)\b", re.IGNORECASE)


def search_query(messages: Sequence[dict[str, str]]) -> str:
    """What to search for: the question, plus the previous question when this one leans on it.

    A follow-up such as "When did he die?" names nothing to search for; the asker's previous
    question supplies the subject. Only a question with a referring word or fewer than three
    content terms borrows context, so a self-contained question searches on its own.
    """
    question = messages[-1]["content"].strip()
    previous = [m["content"].strip() for m in messages[:-1] if m["role"] == "user" and m["content"].strip()]
    if previous and (_REFERRING.search(question) or len(set(analyse(question))) < 3):
        return f"{_context(previous[-1])} {question}"
    return question


# Words of the previous question a follow-up borrows: a question fits many times over, and the
# search and the extractive responder read the query whole, so a long earlier message (within
# OPENCHAT_CHAT_MAX_MESSAGE_TOKENS, 4x the question's bound) must not make every follow-up cost
# as much as a question over the bound.
CONTEXT_WORDS = 64


def _context(previous: str) -> str:
    words = previous.split()
    return previous if len(words) <= CONTEXT_WORDS else " ".join(words[-CONTEXT_WORDS:])


def passage(s: SearchResult, hop: int = 1, next: int = 0) -> Passage:
    """A search result as the answer layer reads it."""
    return Passage(s.text, s.title, s.speaker, s.timestamp, hop, next)


def _title(question: str) -> str:
    q = " ".join(question.split())
    return q if len(q) <= 80 else q[:79].rsplit(" ", 1)[0] + "…"


async def _words(text: str) -> AsyncIterator[str]:
    """The extractive answer as stream deltas: a word (with its space) at a time."""
    parts = text.split(" ")
    for i, word in enumerate(parts):
        yield word if i == 0 else " " + word


async def _empty() -> AsyncIterator[str]:
    return
    yield  # pragma: no cover


async def _timed(stream: AsyncIterator[Delta], turn: Turn, t0: float) -> AsyncIterator[Delta]:
    try:
        async for d in stream:
            yield d
    finally:
        turn.model_ms = (_now() - t0) * 1000


async def _collect(deltas: AsyncIterator[str], turn: Turn) -> AsyncIterator[str]:
    try:
        async for piece in deltas:
            turn.text_parts.append(piece)
            yield piece
    except asyncio.CancelledError:
        raise
    except ApiError:
        raise
    except Exception as exc:  # a provider failing mid-stream
        raise provider_error(exc) from exc
