"""Contribution intake: rows → chunks → copied sentences out → hash → dedupe → embed → ledger rows → index.

Order of writes, so a crash at any point loses nothing and duplicates nothing:
1. the ledger transaction inserts the batch's chunks (the unique content hash settles any
   race: the first writer is the origin) together with the contribution's progress;
2. the inserted chunks go to the index under their ledger ids (an idempotent upsert);
3. they are flagged ``indexed``; chunks left unflagged by a crash are re-indexed at start-up.
A data set's upload stays on disk until it is complete, and an interrupted one resumes at
the first row its last committed batch did not cover.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from retrieval.chunking import Chunker, DraftChunk
from retrieval.embedder import Embedder
from retrieval.hashing import content_hash
from retrieval.lexical import analyse
from retrieval.models import Chunk, Contribution, SentenceOrigin, StretchOrigin, utcnow
from retrieval.origin import (
    MAX_ORIGIN_CHUNKS,
    Sentence,
    Split,
    copied_sentences,
    fingerprints,
    sentences,
    split,
    without,
)
from retrieval.paraphrase import CANDIDATE_CHUNKS, carries_particulars, paraphrase_of
from retrieval.readers import Format, Row, RowError, read_rows
from retrieval.row_limits import RowLimits
from retrieval.said import context_line
from retrieval.sentence_vectors import SentenceTexts
from retrieval.sentence_vectors import by_chunk as sentence_vectors_by_chunk
from retrieval.sentence_vectors import insert as insert_sentence_vectors
from retrieval.sentence_vectors import rows as sentence_vector_rows
from retrieval.store import ChunkIndex, IndexedChunk

log = logging.getLogger(__name__)

# How many row errors and refused chunks a report lists; its counts are always complete.
REPORT_CAP = 100
# A copied sentence's text as the duplicates list quotes it back (the contributor's own input).
QUOTE_CHARS = 200


@dataclass
class IntakeReport:
    """What became of a contribution's rows and chunks."""

    contribution_id: int | None
    status: str = "complete"
    rows: int = 0
    rows_rejected: int = 0
    chunks_stored: int = 0
    chunks_duplicate: int = 0
    chunks_near_duplicate: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    bytes_total: int = 0
    bytes_done: int = 0
    error: str | None = None

    @classmethod
    def of(cls, c: Contribution) -> IntakeReport:
        report = c.report or {}
        return cls(
            contribution_id=c.id, status=c.status, rows=c.rows_done, rows_rejected=c.rows_rejected,
            chunks_stored=c.chunks_stored, chunks_duplicate=c.chunks_duplicate,
            chunks_near_duplicate=c.chunks_near_duplicate, errors=list(report.get("errors", [])),
            duplicates=list(report.get("duplicates", [])), bytes_total=c.bytes_total,
            bytes_done=c.bytes_done, error=c.error,
        )


@dataclass(frozen=True)
class _Stored:
    """A chunk the ledger holds, with its vector, on its way to the index."""

    id: int
    contribution_id: int
    contributor: str
    content_hash: str
    text: str
    title: str | None
    source_id: str | None
    vector: np.ndarray
    speaker: str | None = None
    said_at: str | None = None


@dataclass
class _Drafted:
    """A batch's chunks before the write lock: cut, cleared of other people's sentences, hashed and
    (those not stored yet) embedded."""

    items: int
    rejected: int
    errors: list[dict[str, Any]]
    drafts: list[DraftChunk]
    hashes: list[str]
    vectors: dict[str, np.ndarray]
    # Per draft: the hashes of its fact-carrying sentences (retrieval.origin), recorded as theirs.
    sentences: list[list[str]] = field(default_factory=list)
    # Per draft: the winnowed fingerprints of its word stretches (retrieval.origin), recorded as theirs.
    stretches: list[list[int]] = field(default_factory=list)
    # Sentences copied from other contributors: taken out of their chunk, or the chunk refused.
    copied: list[dict[str, Any]] = field(default_factory=list)
    chunks_copied: int = 0
    # Per draft position: the vector of the whole chunk before copied sentences were taken out.
    whole_vectors: dict[int, np.ndarray] = field(default_factory=dict)
    # Per content hash of a chunk to store: its sentences as the answer layer embeds them, and their vectors.
    sentence_vectors: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)


@dataclass
class _Batch:
    """One batch's outcome before it is folded into the contribution."""

    items: int = 0
    rejected: int = 0
    stored: list[_Stored] = field(default_factory=list)
    duplicate: int = 0
    near_duplicate: int = 0  # includes chunks refused because every fact in them was copied
    errors: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)


# Where a contribution's report records the local file a CLI ingestion reads.
LOCAL_FILE_KEY = "local_file"


@dataclass(frozen=True)
class LocalFile:
    """A data set read from the shell: which file, and which process reads it."""

    path: str
    size: int
    sha256: str
    host: str
    pid: int

    @classmethod
    def of(cls, path: Path) -> LocalFile:
        """Fingerprint ``path`` for this process (reads the whole file once to hash it)."""
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return cls(str(path.resolve()), path.stat().st_size, digest, socket.gethostname(), os.getpid())


class DatasetBusy(RuntimeError):
    """Another live process is still reading this data set."""

    def __init__(self, contribution_id: int, pid: int) -> None:
        super().__init__(f"contribution {contribution_id} is being read by process {pid}")
        self.contribution_id = contribution_id
        self.pid = pid


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


class _Refused(Exception):
    """Rolls a snippet's transaction back when none of its chunks may be stored."""

    def __init__(self, report: IntakeReport) -> None:
        super().__init__("refused")
        self.report = report


# Distinct sentence texts checked for rewording at a time: each slice reads at most
# CANDIDATE_CHUNKS chunks' sentence vectors per text (a few MB), whatever a batch holds.
_PARAPHRASE_SLICE = 256


def _embedding_text(title: str | None, text: str, speaker: str | None = None, said_at: str | None = None) -> str:
    # The title is part of what a chunk is about (BEIR embeds "title text" too); so are the
    # speaker and the day of a message, which its text rarely says ("I ran a 5K yesterday").
    said = context_line(speaker, said_at)
    body = f"{said} {text}" if said else text
    return f"{title}\n{body}" if title and title not in text else body


def batches(items: Iterator[Row | RowError], rows: int, chars: int) -> Iterator[list[Row | RowError]]:
    """Consecutive batches of at most ``rows`` items, each ending once its rows hold ``chars``
    characters of text (a batch has at least one item)."""
    batch: list[Row | RowError] = []
    size = 0
    for item in items:
        batch.append(item)
        size += len(item.text) if isinstance(item, Row) else 0
        if len(batch) >= rows or size >= chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class Intake:
    """Takes snippets and data sets into the ledger and the chunk index."""

    def __init__(
        self,
        engine: Engine,
        index: ChunkIndex,
        embedder: Embedder,
        chunker: Chunker,
        near_duplicate_threshold: float,
        batch_rows: int = 128,
        batch_chars: int = 64 * 1024,
        sentence_texts: SentenceTexts | None = None,
        reworded_copies: bool = True,
    ) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.index = index
        self.embedder = embedder
        self.chunker = chunker
        self.threshold = near_duplicate_threshold
        self.batch_rows = batch_rows
        self.batch_chars = batch_chars
        # What the answer layer embeds of a chunk (retrieval.sentence_vectors); None stores no
        # sentence vectors, and answers embed the sentences they read.
        self.sentence_texts = sentence_texts
        # Whether sentences that reword another contributor's are taken out (``_paraphrases``).
        self.reworded_copies = reworded_copies
        # One writer per process: near-duplicate checks must see every earlier batch. Chunking
        # and embedding (the CPU-heavy part) happen before it is taken, so a snippet waits for a
        # data set's batch to be written, not for it to be embedded.
        self._write_lock = threading.Lock()

    # ---- snippets -------------------------------------------------------------------
    def add_snippet(
        self,
        contributor: str,
        text: str,
        title: str | None = None,
        source: str | None = None,
        licence: str | None = None,
        speaker: str | None = None,
        timestamp: str | None = None,
    ) -> IntakeReport:
        """Store one snippet (a message when it has a speaker and a time); nothing is kept of it
        when every chunk is refused. ``timestamp`` is normalised ISO 8601 (retrieval.said)."""
        drafted = self._draft([Row(1, text, None, title, {}, speaker, timestamp)], contributor)
        with self._write_lock:
            try:
                with self.sessions.begin() as session:
                    contribution = Contribution(
                        contributor=contributor, kind="snippet", title=title, source=source,
                        licence=licence, status="complete", finished_at=utcnow(), report={},
                    )
                    session.add(contribution)
                    session.flush()
                    batch = self._write_batch(session, contribution, drafted)
                    self._fold(contribution, batch)
                    if not batch.stored:
                        raise _Refused(IntakeReport.of(contribution))
            except _Refused as refused:
                refused.report.contribution_id = None
                refused.report.status = "refused"
                return refused.report
            self._index(batch.stored)
        return IntakeReport.of(contribution)

    # ---- data sets ------------------------------------------------------------------
    def open_dataset(
        self,
        contributor: str,
        filename: str,
        fmt: Format,
        size: int,
        title: str | None = None,
        source: str | None = None,
        licence: str | None = None,
        local_file: LocalFile | None = None,
    ) -> int:
        """Record a data set about to be read; returns its contribution id.

        ``local_file`` marks a data set read from the shell (``openchat ingest``) rather than
        uploaded: the API leaves it alone at start-up, and the CLI resumes it.
        """
        report: dict[str, Any] = {LOCAL_FILE_KEY: asdict(local_file)} if local_file is not None else {}
        with self.sessions.begin() as session:
            contribution = Contribution(
                contributor=contributor, kind="dataset", filename=filename, format=fmt, title=title,
                source=source, licence=licence, status="processing", bytes_total=size, report=report,
            )
            session.add(contribution)
            session.flush()
            return contribution.id

    def claim_interrupted(self, contributor: str, local_file: LocalFile) -> int | None:
        """The interrupted CLI data set of this contributor and file, claimed by this process.

        Same file means same name, size and sha256. Returns None when there is none; raises
        ``DatasetBusy`` when the process that recorded it is still running on this host.
        """
        with self.sessions.begin() as session:
            candidates = session.scalars(
                select(Contribution).where(
                    Contribution.kind == "dataset", Contribution.status == "processing",
                    Contribution.contributor == contributor, Contribution.bytes_total == local_file.size,
                ).order_by(Contribution.id.desc()).with_for_update()
            )
            for contribution in candidates:
                recorded = (contribution.report or {}).get(LOCAL_FILE_KEY)
                if not recorded or recorded.get("sha256") != local_file.sha256:
                    continue
                if recorded.get("host") == local_file.host and _alive(int(recorded.get("pid", 0))):
                    raise DatasetBusy(contribution.id, int(recorded["pid"]))
                contribution.report = {**contribution.report, LOCAL_FILE_KEY: asdict(local_file)}
                return contribution.id
        return None

    def ingest_dataset(
        self,
        contribution_id: int,
        path: Path,
        progress: Callable[[IntakeReport], None] | None = None,
        limits: RowLimits | None = None,
        stop: threading.Event | None = None,
    ) -> IntakeReport:
        """Read a recorded data set's file in batches, resuming after its last committed batch.

        When ``stop`` is set the reading pauses after the current batch; the data set stays
        ``processing`` and the next start resumes it.
        """
        with self.sessions() as session:
            contribution = session.get(Contribution, contribution_id)
            if contribution is None:
                raise KeyError(contribution_id)
            fmt: Format = contribution.format  # type: ignore[assignment]
            name, skip, contributor = contribution.filename, contribution.rows_done, contribution.contributor
        try:
            with path.open("rb") as stream:
                items: Iterator[Row | RowError] = read_rows(stream, fmt, limits=limits or RowLimits(), name=name)
                for _ in islice(items, skip):
                    pass
                for batch in batches(items, self.batch_rows, self.batch_chars):
                    self._dataset_batch(contribution_id, contributor, batch, stream.tell())
                    if progress is not None:
                        progress(self.report(contribution_id))
                    if stop is not None and stop.is_set():
                        return self.report(contribution_id)
        except Exception as exc:
            # A file-level problem (no 'text' column, undecodable) ends the data set; the
            # batches already committed stay, and the report says where it stopped.
            log.exception("data set %s failed", contribution_id)
            self.finish(contribution_id, "failed", str(exc))
            raise
        self.finish(contribution_id, "complete", None)
        return self.report(contribution_id)

    def _dataset_batch(self, contribution_id: int, contributor: str, items: Sequence[Row | RowError], offset: int) -> None:
        drafted = self._draft(items, contributor)
        with self._write_lock:
            with self.sessions.begin() as session:
                contribution = session.get(Contribution, contribution_id, with_for_update=True)
                assert contribution is not None
                batch = self._write_batch(session, contribution, drafted)
                self._fold(contribution, batch)
                contribution.bytes_done = offset
            self._index(batch.stored)

    def finish(self, contribution_id: int, status: str, error: str | None) -> None:
        with self.sessions.begin() as session:
            contribution = session.get(Contribution, contribution_id)
            if contribution is not None:
                contribution.status = status
                contribution.error = error
                contribution.finished_at = utcnow()
                if status == "complete":
                    contribution.bytes_done = contribution.bytes_total

    def report(self, contribution_id: int) -> IntakeReport:
        with self.sessions() as session:
            contribution = session.get(Contribution, contribution_id)
            if contribution is None:
                raise KeyError(contribution_id)
            return IntakeReport.of(contribution)

    def unfinished_datasets(self) -> list[int]:
        """Uploaded data sets a previous process was reading when it stopped.

        Data sets read by ``openchat ingest`` from a local file are not listed: the API has
        no copy of that file, and the CLI resumes them (``claim_interrupted``).
        """
        with self.sessions() as session:
            rows = session.execute(
                select(Contribution.id, Contribution.report)
                .where(Contribution.kind == "dataset", Contribution.status == "processing")
                .order_by(Contribution.id)
            )
            return [cid for cid, report in rows if LOCAL_FILE_KEY not in (report or {})]

    # ---- the shared batch path --------------------------------------------------------
    def _draft(self, items: Sequence[Row | RowError], contributor: str) -> _Drafted:
        """Chunk a batch, take out sentences other contributors stored first, hash the chunks, and
        embed those new to the batch and to the ledger (no lock)."""
        errors: list[dict[str, Any]] = []
        rows: list[Row] = []
        for item in items:
            if isinstance(item, RowError):
                errors.append({"line": item.line, "error": item.error})
            else:
                rows.append(item)
        cut = list(self.chunker.chunk(rows))
        stored = self._stored_hashes({content_hash(d.text) for d in cut})
        # An exact copy of a stored chunk stays whole: the exact-duplicate rule reports it.
        known: dict[str, np.ndarray] = {}  # sentence texts embedded for the paraphrase check, reused below
        drafts, kept, prints, originals, copied, chunks_copied = self._without_copied_sentences(
            cut, stored, contributor, known)
        hashes = [content_hash(d.text) for d in drafts]
        first: dict[str, DraftChunk] = {}
        for draft, h in zip(drafts, hashes):
            first.setdefault(h, draft)
        for h in stored | self._stored_hashes(set(first) - stored):
            first.pop(h, None)
        # A chunk that lost copied sentences is also checked whole against the near-duplicate
        # threshold: a light rewording of someone's chunk must not pass by dropping its exact sentences.
        whole = {i: v for i, v in zip(originals, self.embedder.embed(
            [_embedding_text(drafts[i].title, originals[i], drafts[i].speaker, drafts[i].timestamp) for i in originals]
        ))} if originals else {}
        return _Drafted(len(items), len(errors), errors, drafts, hashes, self._embed(first), kept, prints, copied,
                        chunks_copied, whole, self._embed_sentences(first, known))

    def _stored_hashes(self, hashes: set[str]) -> set[str]:
        if not hashes:
            return set()
        with self.sessions() as session:
            return set(session.scalars(select(Chunk.content_hash).where(Chunk.content_hash.in_(hashes))))

    def _origins(self, session: Session, hashes: set[str], contributor: str) -> dict[str, tuple[int, str]]:
        """The sentences among ``hashes`` another contributor stored first: hash -> (chunk id, contributor)."""
        found: dict[str, tuple[int, str]] = {}
        ordered = sorted(hashes)
        for at in range(0, len(ordered), 500):  # bounded IN lists (a 200k-character row has ~2k sentences)
            for h, cid, who in session.execute(
                select(SentenceOrigin.hash, SentenceOrigin.chunk_id, SentenceOrigin.contributor)
                .where(SentenceOrigin.hash.in_(ordered[at:at + 500]), SentenceOrigin.contributor != contributor)
            ):
                found[h] = (cid, who)
        return found

    def _stretch_origins(self, session: Session, prints: set[int], contributor: str) -> dict[int, int]:
        """The fingerprints among ``prints`` another contributor stored first: hash -> chunk id."""
        found: dict[int, int] = {}
        ordered = sorted(prints)
        for at in range(0, len(ordered), 500):
            for h, cid in session.execute(
                select(StretchOrigin.hash, StretchOrigin.chunk_id)
                .where(StretchOrigin.hash.in_(ordered[at:at + 500]), StretchOrigin.contributor != contributor)
            ):
                found[h] = cid
        return found

    def _stretch_copies(
        self, session: Session, splits: Sequence[Split | None], prints: Sequence[Sequence[int]], contributor: str,
    ) -> list[dict[int, tuple[int, str]]]:
        """Per text: its sentences (by position) that carry a stretch another contributor stored
        first, each with that origin (chunk id, contributor).

        Fingerprint hits only pick the candidates: at most ``MAX_ORIGIN_CHUNKS`` older chunks per
        text (those it shares most fingerprints with) are read back and aligned word for word, so
        the work per chunk is bounded whatever it holds.
        """
        hits = self._stretch_origins(session, {f for p in prints for f in p}, contributor)
        if not hits:
            return [{} for _ in splits]
        wanted: list[list[int]] = []
        for p in prints:
            counts = Counter(hits[f] for f in p if f in hits)
            wanted.append([cid for cid, _ in counts.most_common(MAX_ORIGIN_CHUNKS)])
        ids = sorted({cid for w in wanted for cid in w})
        texts: dict[int, tuple[str, str]] = {}
        for at in range(0, len(ids), 500):
            for cid, who, text in session.execute(
                select(Chunk.id, Chunk.contributor, Chunk.text).where(Chunk.id.in_(ids[at:at + 500]))
            ):
                texts[cid] = (who, text)
        origin_splits = {cid: split(text) for cid, (_, text) in texts.items()}
        out: list[dict[int, tuple[int, str]]] = []
        for sp, cids in zip(splits, wanted):
            if sp is None or not cids:
                out.append({})
                continue
            found = copied_sentences(sp, {cid: origin_splits[cid] for cid in cids if cid in origin_splits})
            out.append({i: (cid, texts[cid][0]) for i, cid in found.items()})
        return out

    def _without_copied_sentences(
        self, drafts: list[DraftChunk], stored: set[str], contributor: str, known: dict[str, np.ndarray],
    ) -> tuple[list[DraftChunk], list[list[str]], list[list[int]], dict[int, str], list[dict[str, Any]], int]:
        """Take every sentence that copies what another contributor stored first out of its chunk.

        A sentence copies when it is a fact-carrying sentence stored before word for word, or when
        it carries a stretch of another contributor's chunk (``retrieval.origin.copied_sentences``:
        wrapped, trimmed, one word changed, a clause, two merged or one split), or rewords one
        (``retrieval.paraphrase``: the same particulars, the vectors close). A chunk left with no
        fact-carrying sentence of its own is refused (a copy in parts); otherwise it is stored
        without the copied sentences, which stay credited to their origin. Chunks whose hash is in
        ``stored`` (exact copies) are left whole. Returns the chunks to store, the sentence hashes
        and stretch fingerprints each records, the original text of each chunk that lost
        sentences (by position), the report entries (each names the origin chunk and
        contributor) and how many chunks were refused.
        """
        splits = [None if content_hash(d.text) in stored else split(d.text) for d in drafts]
        prints = [fingerprints(sp.words) if sp is not None else [] for sp in splits]
        wanted = {s.hash for sp in splits if sp is not None for s in sp.sentences if s.hash is not None}
        if not wanted and not any(prints):
            return drafts, [[] for _ in drafts], prints, {}, [], 0
        with self.sessions() as session:
            origins = self._origins(session, wanted, contributor)
            stretches = self._stretch_copies(session, splits, prints, contributor)
        taken = [{i for i, s in enumerate(sp.sentences) if s.hash in origins} | set(found) if sp is not None else set()
                 for sp, found in zip(splits, stretches)]
        reworded = self._paraphrases(drafts, splits, taken, contributor, known)
        out: list[DraftChunk] = []
        kept: list[list[str]] = []
        kept_prints: list[list[int]] = []
        originals: dict[int, str] = {}
        entries: list[dict[str, Any]] = []
        refused = 0
        for draft, sp, own_prints, by_stretch, by_meaning in zip(drafts, splits, prints, stretches, reworded):
            sents = sp.sentences if sp is not None else []
            # An exact sentence names its own origin; a stretch the chunk it copies most from; a
            # reworded sentence the one it rewords.
            copies = {i: origins[s.hash] for i, s in enumerate(sents) if s.hash is not None and s.hash in origins}
            copies = {**{i: (cid, who) for i, (cid, who, _) in by_meaning.items()}, **by_stretch, **copies}
            own = [s.hash for i, s in enumerate(sents) if s.hash is not None and i not in copies]
            similar = {i: sim for i, (_, _, sim) in by_meaning.items() if i in copies and copies[i] == by_meaning[i][:2]}
            if copies and not own:
                refused += 1
                entries.extend(self._copied(draft, sents[i], copies[i], "chunk_refused", similar.get(i))
                               for i in sorted(copies))
                continue
            if copies:
                entries.extend(self._copied(draft, sents[i], copies[i], "sentence_removed", similar.get(i))
                               for i in sorted(copies))
                originals[len(out)] = draft.text
                draft = replace(draft, text=without(draft.text, [sents[i] for i in copies]))
                own_prints = fingerprints(split(draft.text).words)
            out.append(draft)
            kept.append(list(dict.fromkeys(h for h in own if h is not None)))
            kept_prints.append(own_prints)
        return out, kept, kept_prints, originals, entries, refused

    @classmethod
    def _copied(cls, draft: DraftChunk, sentence: Sentence, origin: tuple[int, str], outcome: str,
                reworded: float | None = None) -> dict[str, Any]:
        # ``reworded``: the cosine to the sentence it paraphrases (an exact or stretch copy has none).
        entry = cls._dup(draft, "copied_sentence", chunk_id=origin[0], contributor=origin[1], similarity=reworded)
        entry["sentence"] = sentence.text[:QUOTE_CHARS]
        entry["outcome"] = outcome
        return entry

    def _embed(self, drafts: dict[str, DraftChunk]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed([_embedding_text(d.title, d.text, d.speaker, d.timestamp) for d in drafts.values()])
        return dict(zip(drafts, vectors))

    def _embed_sentences(self, drafts: dict[str, DraftChunk],
                         known: dict[str, np.ndarray] | None = None) -> dict[str, tuple[list[str], np.ndarray]]:
        """Each chunk's sentence texts (``sentence_texts``) and vectors: one embedding call for
        the batch, a sentence that overlapping chunks share (or ``known`` holds) embedded once."""
        if self.sentence_texts is None or not drafts:
            return {}
        texts = {h: self.sentence_texts(d.text, d.speaker) for h, d in drafts.items()}
        vectors = self._embedded([t for ts in texts.values() for t in ts], known if known is not None else {})
        empty = np.zeros((0, self.embedder.dim), dtype=np.float32)
        return {h: (ts, np.stack([vectors[t] for t in ts]) if ts else empty) for h, ts in texts.items()}

    def _embedded(self, texts: Sequence[str], known: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``known`` with the vectors of ``texts`` it lacked added (one embedding call, each text once)."""
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, self.embedder.embed(missing)))
        return known

    def _paraphrases(
        self, drafts: Sequence[DraftChunk], splits: Sequence[Split | None], taken: Sequence[set[int]],
        contributor: str, known: dict[str, np.ndarray],
    ) -> list[dict[int, tuple[int, str, float]]]:
        """Per draft: its sentences (by position) that reword a sentence another contributor stored
        first (``retrieval.paraphrase``), each with that origin (chunk id, contributor, cosine).

        Each sentence carrying particulars is embedded as the answer layer embeds it and compared
        with the stored sentences of the ``CANDIDATE_CHUNKS`` chunks nearest to it, ``_PARAPHRASE_SLICE``
        distinct texts at a time: the work and memory per slice are bounded whatever a batch holds.
        Needs ``sentence_texts`` (the stored sentences' vectors come from it).
        """
        out: list[dict[int, tuple[int, str, float]]] = [{} for _ in drafts]
        if self.sentence_texts is None or not self.reworded_copies:
            return out
        asks: dict[str, list[tuple[int, int]]] = {}  # text -> where it stands (overlapping chunks share some)
        for k, (draft, sp) in enumerate(zip(drafts, splits)):
            for i, sentence in enumerate(sp.sentences if sp is not None else []):
                if sentence.hash is not None and i not in taken[k] and carries_particulars(sentence.text):
                    for t in self.sentence_texts(sentence.text, draft.speaker):
                        asks.setdefault(t, []).append((k, i))
        texts = list(asks)
        for at in range(0, len(texts), _PARAPHRASE_SLICE):
            piece = texts[at:at + _PARAPHRASE_SLICE]
            vectors = self._embedded(piece, known)
            asked = np.stack([vectors[t] for t in piece])
            near = self.index.neighbours(asked, CANDIDATE_CHUNKS, not_contributor=contributor)
            ids = sorted({cid for cids in near for cid in cids})
            with self.sessions() as session:
                stored = sentence_vectors_by_chunk(session, ids, self.embedder.dim)
                owners: dict[int, str] = {}
                for start in range(0, len(ids), 500):
                    owners.update(session.execute(select(Chunk.id, Chunk.contributor)
                                                  .where(Chunk.id.in_(ids[start:start + 500]))).all())
            for text, vector, cids in zip(piece, asked, near):
                older = [(cid, t, v) for cid in cids for t, v in stored.get(cid, [])]
                found = paraphrase_of(text, vector, [(t, v) for _, t, v in older])
                if found is None:
                    continue
                cid = older[found[0]][0]
                for k, i in asks[text]:
                    out[k].setdefault(i, (cid, owners.get(cid, ""), found[1]))
        return out

    def _write_batch(self, session: Session, contribution: Contribution, drafted: _Drafted) -> _Batch:
        """Dedupe and insert one drafted batch inside the caller's transaction (under the write lock)."""
        batch = _Batch(items=drafted.items, rejected=drafted.rejected, errors=list(drafted.errors),
                       near_duplicate=drafted.chunks_copied, duplicates=list(drafted.copied))
        drafts, hashes = drafted.drafts, drafted.hashes
        facts = drafted.sentences or [[] for _ in drafts]
        prints = drafted.stretches or [[] for _ in drafts]

        # Exact duplicates: of a stored chunk, or of an earlier chunk of this batch.
        origin = {
            h: (cid, who)
            for h, cid, who in session.execute(
                select(Chunk.content_hash, Chunk.id, Chunk.contributor).where(Chunk.content_hash.in_(set(hashes)))
            )
        } if hashes else {}
        fresh: list[int] = []
        first_in_batch: dict[str, DraftChunk] = {}
        for i, (draft, h) in enumerate(zip(drafts, hashes)):
            if h in origin:
                cid, who = origin[h]
                batch.duplicate += 1
                batch.duplicates.append(self._dup(draft, "duplicate", chunk_id=cid, contributor=who))
            elif h in first_in_batch:
                batch.duplicate += 1
                batch.duplicates.append(self._dup(draft, "duplicate", line_of=first_in_batch[h].line))
            else:
                first_in_batch[h] = draft
                fresh.append(i)

        # Chunks are never deleted, so every fresh one was embedded while drafting; this is a guard.
        missing = {hashes[i]: drafts[i] for i in fresh if hashes[i] not in drafted.vectors}
        embedded = {**drafted.vectors, **self._embed(missing)} if missing else drafted.vectors
        vectors = (np.stack([embedded[hashes[i]] for i in fresh]) if fresh
                   else np.zeros((0, self.embedder.dim), dtype=np.float32))
        # Near duplicates: cosine to a stored chunk or to an accepted chunk of this batch.
        nearest = self.index.nearest(vectors, self.threshold)
        trimmed = [i for i in fresh if i in drafted.whole_vectors]
        if trimmed:  # a chunk that lost copied sentences is a near copy when its whole text was
            for i, hit in zip(trimmed, self.index.nearest(np.stack([drafted.whole_vectors[i] for i in trimmed]),
                                                          self.threshold)):
                if hit is not None and nearest[fresh.index(i)] is None:
                    nearest[fresh.index(i)] = hit
        slot = {i: pos for pos, i in enumerate(fresh)}
        accepted: list[int] = []
        for pos, i in enumerate(fresh):
            if nearest[pos] is not None:
                cid, score = nearest[pos]  # type: ignore[misc]
                batch.near_duplicate += 1
                batch.duplicates.append(self._dup(drafts[i], "near_duplicate", chunk_id=cid, similarity=score))
                continue
            # Chunks of one row overlap and share its title, so a short tail chunk can look
            # like its neighbour; they are one text, never copies of each other.
            others = [a for a in accepted if drafts[a].line != drafts[i].line]
            if others:
                sims = vectors[[slot[a] for a in others]] @ vectors[pos]
                best = int(np.argmax(sims))
                if sims[best] >= self.threshold:
                    batch.near_duplicate += 1
                    batch.duplicates.append(
                        self._dup(drafts[i], "near_duplicate", line_of=drafts[others[best]].line, similarity=float(sims[best]))
                    )
                    continue
            accepted.append(i)

        # A sentence stored by someone else since this batch was drafted (a concurrent writer in
        # another process): the chunk would repeat it, so it is refused; rare, so not redrafted.
        raced = self._origins(session, {h for i in accepted for h in facts[i]}, contribution.contributor)
        if raced:
            for i in [a for a in accepted if any(h in raced for h in facts[a])]:
                accepted.remove(i)
                batch.near_duplicate += 1
                h = next(h for h in facts[i] if h in raced)
                entry = self._dup(drafts[i], "copied_sentence", chunk_id=raced[h][0], contributor=raced[h][1])
                entry["outcome"] = "chunk_refused"
                batch.duplicates.append(entry)
        # Likewise for a stretch stored meanwhile: only chunks whose fingerprints were hit are
        # split and aligned again.
        if accepted and self._stretch_origins(session, {f for i in accepted for f in prints[i]}, contribution.contributor):
            again = self._stretch_copies(session, [split(drafts[i].text) for i in accepted],
                                         [prints[i] for i in accepted], contribution.contributor)
            for i, found in [(i, f) for i, f in zip(list(accepted), again) if f]:
                accepted.remove(i)
                batch.near_duplicate += 1
                cid, who = next(iter(found.values()))
                entry = self._dup(drafts[i], "copied_sentence", chunk_id=cid, contributor=who)
                entry["outcome"] = "chunk_refused"
                batch.duplicates.append(entry)

        if accepted:
            base = contribution.chunks_stored
            values = [
                {
                    "contribution_id": contribution.id, "contributor": contribution.contributor,
                    "content_hash": hashes[i], "text": drafts[i].text, "title": drafts[i].title,
                    "source_id": drafts[i].source_id, "position": base + n, "line": drafts[i].line,
                    "meta": drafts[i].meta, "speaker": drafts[i].speaker, "said_at": drafts[i].timestamp,
                    "indexed": False, "sentences_indexed": True, "stretches_indexed": True,
                    "created_at": utcnow(),
                }
                for n, i in enumerate(accepted)
            ]
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            stmt = (
                dialect.insert(Chunk)
                .values(values)
                .on_conflict_do_nothing(index_elements=["content_hash"])
                .returning(Chunk.id, Chunk.content_hash)
            )
            inserted = {h: cid for cid, h in session.execute(stmt)}
            self._record_origins(session, SentenceOrigin, [(inserted[hashes[i]], contribution.contributor, facts[i])
                                             for i in accepted if hashes[i] in inserted])
            self._record_origins(session, StretchOrigin, [(inserted[hashes[i]], contribution.contributor, prints[i])
                                             for i in accepted if hashes[i] in inserted])
            insert_sentence_vectors(session, [
                r for h in dict.fromkeys(hashes[i] for i in accepted) if h in inserted and h in drafted.sentence_vectors
                for r in sentence_vector_rows(inserted[h], *drafted.sentence_vectors[h])])
            vector_of = {hashes[i]: vectors[slot[i]] for i in accepted}
            for value in values:
                h = value["content_hash"]
                if h not in inserted:  # another writer stored the same text first
                    batch.duplicate += 1
                    batch.duplicates.append({"line": value["line"], "kind": "duplicate", "reason": "stored concurrently by another contribution"})
                    continue
                batch.stored.append(
                    _Stored(inserted[h], contribution.id, contribution.contributor, h, value["text"],
                            value["title"], value["source_id"], vector_of[h], value["speaker"], value["said_at"])
                )
        return batch

    @staticmethod
    def _record_origins(session: Session, table: type[SentenceOrigin | StretchOrigin],
                        chunks: Sequence[tuple[int, str, Sequence[str] | Sequence[int]]]) -> None:
        """Record each chunk's origin keys in ``table`` (its fact-carrying sentences' hashes, or its
        stretch fingerprints); a key already recorded keeps its origin."""
        values, seen = [], set()
        for chunk_id, contributor, keys in chunks:
            for h in keys:
                if h not in seen:
                    seen.add(h)
                    values.append({"hash": h, "chunk_id": chunk_id, "contributor": contributor})
        if not values:
            return
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        for at in range(0, len(values), 500):
            session.execute(dialect.insert(table).values(values[at:at + 500])
                            .on_conflict_do_nothing(index_elements=["hash"]))

    def fill_stretch_origins(self, batch: int = 512) -> int:
        """Record the stretch fingerprints of chunks stored before stretch origins existed, oldest
        chunk first (so the first contributor of a stretch is its origin); returns how many chunks."""
        return self._fill_origins(Chunk.stretches_indexed, StretchOrigin, lambda text: fingerprints(split(text).words), batch)

    def fill_sentence_origins(self, batch: int = 512) -> int:
        """Record the sentences of chunks stored before sentence origins existed, oldest chunk first
        (so the first contributor of a sentence is its origin); returns how many chunks."""
        return self._fill_origins(Chunk.sentences_indexed, SentenceOrigin,
                                  lambda text: [s.hash for s in sentences(text) if s.hash is not None], batch)

    def _fill_origins(self, marked: Any, table: type[SentenceOrigin | StretchOrigin],
                      keys_of: Callable[[str], Sequence[str] | Sequence[int]], batch: int) -> int:
        """Record ``table``'s keys of every chunk whose ``marked`` flag is off, oldest first, in
        batches, and set the flag; returns how many chunks."""
        done = 0
        while True:
            with self.sessions.begin() as session:
                rows = list(session.execute(
                    select(Chunk.id, Chunk.contributor, Chunk.text).where(marked.is_(False)).order_by(Chunk.id).limit(batch)
                ))
                if not rows:
                    return done
                self._record_origins(session, table, [(r.id, r.contributor, keys_of(r.text)) for r in rows])
                session.execute(update(Chunk).where(Chunk.id.in_([r.id for r in rows])).values({marked.key: True}))
            done += len(rows)

    @staticmethod
    def _dup(draft: DraftChunk, kind: str, *, chunk_id: int | None = None, contributor: str | None = None,
             line_of: int | None = None, similarity: float | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"line": draft.line, "kind": kind}
        if chunk_id is not None:
            entry["chunk_id"] = chunk_id
        if contributor is not None:
            entry["origin_contributor"] = contributor
        if line_of is not None:
            entry["same_as_line"] = line_of
        if similarity is not None:
            entry["similarity"] = round(similarity, 4)
        return entry

    @staticmethod
    def _fold(contribution: Contribution, batch: _Batch) -> None:
        contribution.rows_done += batch.items
        contribution.rows_rejected += batch.rejected
        contribution.chunks_stored += len(batch.stored)
        contribution.chunks_duplicate += batch.duplicate
        contribution.chunks_near_duplicate += batch.near_duplicate
        report = dict(contribution.report or {})
        for key in ("errors", "duplicates"):
            listed = list(report.get(key, []))
            listed.extend(getattr(batch, key)[: max(0, REPORT_CAP - len(listed))])
            report[key] = listed
        contribution.report = report  # reassigned so SQLAlchemy sees the JSON change

    # ---- the index ----------------------------------------------------------------------
    def _index(self, chunks: Sequence[_Stored]) -> None:
        if not chunks:
            return
        self.index.upsert(
            [
                IndexedChunk(
                    chunk_id=c.id, vector=c.vector, terms=analyse(_embedding_text(c.title, c.text, c.speaker, c.said_at)),
                    contributor=c.contributor, contribution_id=c.contribution_id,
                    content_hash=c.content_hash, text=c.text, title=c.title, source_id=c.source_id,
                    speaker=c.speaker, said_at=c.said_at,
                )
                for c in chunks
            ]
        )
        with self.sessions.begin() as session:
            session.execute(update(Chunk).where(Chunk.id.in_([c.id for c in chunks])).values(indexed=True))

    def fill_sidecar(self, batch: int = 1024) -> int:
        """Give a lexical sidecar that holds fewer chunks than the ledger every indexed chunk.

        A new sidecar beside an existing index (say, tantivy where FTS5 was) starts empty;
        its content is a function of the ledger's text, so it is rebuilt from there, without
        embedding anything. Re-adding replaces, so this is safe to repeat. Returns how many.
        """
        sidecar = self.index.sidecar
        if sidecar is None:
            return 0
        with self.sessions() as session:
            indexed = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.indexed.is_(True))) or 0
        if sidecar.count() >= indexed:
            return 0
        done, last = 0, 0
        while True:
            with self.sessions() as session:
                rows = list(session.execute(
                    select(Chunk.id, Chunk.title, Chunk.text, Chunk.contributor, Chunk.contribution_id, Chunk.speaker,
                           Chunk.said_at)
                    .where(Chunk.indexed.is_(True), Chunk.id > last).order_by(Chunk.id).limit(batch)
                ))
            if not rows:
                return done
            sidecar.add((r.id, analyse(_embedding_text(r.title, r.text, r.speaker, r.said_at)), r.contributor, r.contribution_id)
                        for r in rows)
            done += len(rows)
            last = rows[-1].id

    def reindex_pending(self, batch: int = 256) -> int:
        """Index chunks a crash left between the ledger and the index; returns how many."""
        done = 0
        while True:
            with self.sessions() as session:
                rows = list(session.scalars(select(Chunk).where(Chunk.indexed.is_(False)).order_by(Chunk.id).limit(batch)))
            if not rows:
                return done
            vectors = self.embedder.embed([_embedding_text(c.title, c.text, c.speaker, c.said_at) for c in rows])
            self._index(
                [
                    _Stored(c.id, c.contribution_id, c.contributor, c.content_hash, c.text, c.title, c.source_id, v,
                            c.speaker, c.said_at)
                    for c, v in zip(rows, vectors)
                ]
            )
            done += len(rows)
