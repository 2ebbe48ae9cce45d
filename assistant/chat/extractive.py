"""The built-in extractive responder: answers with the retrieved sentences that best fit.

No model weights can be downloaded here, so the default "model" is an algorithm:

1. split each retrieved chunk into sentences;
2. score every sentence against the question:
   ``W_COS * cos(question, sentence) + W_LEX * idf_overlap + W_CHUNK * cos(question, chunk)``
   where ``idf_overlap`` is the IDF-weighted share of the question's content terms the
   sentence contains (IDF over the candidate sentences, so a term every candidate shares,
   like the article's subject, counts little) and the chunk cosine (the chunk's vector taken
   as the normalised mean of its sentence vectors) lets a sentence that relies on its
   context ("It was founded in 1096") borrow its paragraph's relevance;
3. answer with the best sentence, plus the next best sentence *of the same chunk* when it
   scores within ``SECOND_MARGIN`` and the answer stays under ``MAX_WORDS`` (a second sentence
   from another chunk was measured to cost citation precision, 0.85 vs 0.90, for +0.02
   recall); each sentence cites its chunk with ``[n]``;
4. say plainly that the sources do not answer when the best score is below ``MIN_SCORE``,
   when the question names a number that no retrieved chunk contains (a question about
   "the 1000s" is not answered by a paragraph about "the 10th century"), or when the question
   is negated and the best sentence is not (see ``_NEGATION``).

Weights and thresholds were tuned on the even-numbered questions of squad2-dev-5 by a grid
search over (W_COS, W_LEX, W_CHUNK, SECOND_MARGIN), then ``MIN_SCORE`` was set to the highest
value that keeps answer recall >= 0.80 on that half. It trades recall for no-answer accuracy
(tuning half, recall / no-answer: 0.46: 0.807 / 0.251; 0.50: 0.789 / 0.298; 0.54: 0.751 /
0.362; 0.58: 0.705 / 0.425). The odd half is held out; ``bench/answers.py`` prints both.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.chat.sentences import split_sentences
from retrieval.embedder import Embedder
from retrieval.lexical import analyse

NO_ANSWER = "My sources do not answer this question."
MODEL_ID = "openchat-extractive"

# Tuned on squad2-dev-5 (even-numbered questions; the odd ones held out), see bench/answers.py.
W_COS = 0.4
W_LEX = 0.6
W_CHUNK = 0.3
SECOND_MARGIN = 0.15
MIN_SCORE = 0.46
MAX_SENTENCES = 2
MAX_WORDS = 60
_DIGITS = re.compile(r"\d")
# A negated question ("What did the Normans not ...?") answered by a sentence with no negation
# is, on squad2-dev-5, unanswerable 91% of the time (89 questions; flagging them gains 0.115
# no-answer accuracy and costs 0.007 answer recall).
_NEGATION = re.compile(r"\b(?:not|never|no|none|without)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True)
class Pick:
    """A sentence the responder chose: its source number and score."""

    marker: int
    sentence: str
    score: float


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str  # with [n] markers
    picks: list[Pick]
    best_score: float | None

    @property
    def answered(self) -> bool:
        return bool(self.picks)


@dataclass(frozen=True)
class ExtractiveConfig:
    w_cos: float = W_COS
    w_lex: float = W_LEX
    w_chunk: float = W_CHUNK
    second_margin: float = SECOND_MARGIN
    min_score: float = MIN_SCORE
    max_sentences: int = MAX_SENTENCES
    max_words: int = MAX_WORDS


def cite(sentence: str, marker: int) -> str:
    """The sentence with its marker placed before the final punctuation: "... France [1]."."""
    match = re.search(r"([.!?]+[\"'”’)]*)$", sentence)
    if match:
        return f"{sentence[: match.start()]} [{marker}]{match.group(1)}"
    return f"{sentence} [{marker}]"


class VectorCache:
    """An embedder that remembers: chunk text is immutable, so its vectors never go stale.

    It satisfies retrieval's ``Embedder`` protocol, so search can use it too and a question
    is embedded once per answer (search, sentence scoring and citation checks share it).
    """

    def __init__(self, embedder: Embedder, size: int) -> None:
        self.embedder = embedder
        self.size = size
        self.dim = embedder.dim
        self.name = embedder.name
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def token_ids(self, text: str) -> list[int]:
        return self.embedder.token_ids(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.get(texts)

    def get(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._data))
        if missing:
            vectors = self.embedder.embed(missing)
            with self._lock:
                for t, v in zip(missing, vectors):
                    self._data[t] = v
                while len(self._data) > self.size:
                    self._data.popitem(last=False)
        with self._lock:
            out = []
            for t in texts:
                v = self._data.get(t)
                if v is None:  # evicted by a concurrent caller between the two locks
                    v = self.embedder.embed([t])[0]
                else:
                    self._data.move_to_end(t)
                out.append(v)
        return np.stack(out) if out else np.zeros((0, self.embedder.dim), dtype=np.float32)


class ExtractiveResponder:
    """Selects, orders and cites the source sentences that answer a question."""

    def __init__(self, embedder: Embedder, config: ExtractiveConfig = ExtractiveConfig(), cache_size: int = 50_000) -> None:
        self.embedder = embedder
        self.config = config
        self.vectors = VectorCache(embedder, cache_size)

    def answer(self, question: str, sources: Sequence[str]) -> ExtractiveAnswer:
        """Answer ``question`` from ``sources`` (source n is ``sources[n - 1]``)."""
        cfg = self.config
        q_terms = set(analyse(question))
        candidates: list[tuple[int, str, set[str]]] = []
        for marker, text in enumerate(sources, start=1):
            for sentence in split_sentences(text):
                if len(sentence) >= 3:
                    candidates.append((marker, sentence, set(analyse(sentence))))
        if not candidates:
            return ExtractiveAnswer(NO_ANSWER, [], None)
        # A number the question names but no source mentions: the sources are about
        # something else, however similar they look.
        source_terms = set().union(*(c[2] for c in candidates))
        if any(_DIGITS.search(t) and t not in source_terms for t in q_terms):
            return ExtractiveAnswer(NO_ANSWER, [], None)

        q_vec = self.vectors.get([question])[0]
        sent_vecs = self.vectors.get([c[1] for c in candidates])
        sent_cos = sent_vecs @ q_vec
        # A chunk's vector as the normalised mean of its sentences' vectors: close to embedding
        # the chunk itself, at no extra model call (cold chunks dominated the p99 latency).
        chunk_cos = np.zeros(len(sources), dtype=np.float32)
        for marker in range(1, len(sources) + 1):
            rows = [i for i, c in enumerate(candidates) if c[0] == marker]
            if rows:
                mean = sent_vecs[rows].mean(axis=0)
                chunk_cos[marker - 1] = float(mean @ q_vec) / max(float(np.linalg.norm(mean)), 1e-9)
        n = len(candidates)
        df: dict[str, int] = {}
        for _, _, terms in candidates:
            for t in terms & q_terms:
                df[t] = df.get(t, 0) + 1
        idf = {t: math.log(1 + n / (df.get(t, 0) + 0.5)) for t in q_terms}
        total = sum(idf.values()) or 1.0
        scores = [
            cfg.w_cos * float(sent_cos[i])
            + cfg.w_lex * sum(idf[t] for t in terms & q_terms) / total
            + cfg.w_chunk * float(chunk_cos[marker - 1])
            for i, (marker, _, terms) in enumerate(candidates)
        ]
        order = sorted(range(n), key=lambda i: scores[i], reverse=True)
        best = scores[order[0]]
        if best < cfg.min_score:
            return ExtractiveAnswer(NO_ANSWER, [], round(best, 4))
        if _NEGATION.search(question) and not _NEGATION.search(candidates[order[0]][1]):
            return ExtractiveAnswer(NO_ANSWER, [], round(best, 4))
        chosen = [order[0]]
        words = len(candidates[order[0]][1].split())
        for i in order[1:]:
            if len(chosen) >= cfg.max_sentences or scores[i] < best - cfg.second_margin:
                break
            length = len(candidates[i][1].split())
            same_chunk = candidates[i][0] == candidates[chosen[0]][0]
            if same_chunk and words + length <= cfg.max_words and candidates[i][1] != candidates[chosen[0]][1]:
                chosen.append(i)
                words += length
        # Read in source order (and sentence order within a source), not score order.
        chosen.sort()
        picks = [Pick(candidates[i][0], candidates[i][1], round(scores[i], 4)) for i in chosen]
        return ExtractiveAnswer(" ".join(cite(p.sentence, p.marker) for p in picks), picks, round(best, 4))
