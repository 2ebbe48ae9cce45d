"""Answer benchmark over HTTP: the extractive responder end to end on three data sets.

Starts the real app (embedded defaults: SQLite + Qdrant local mode) on a loopback port,
ingests the set's corpus through POST /v1/datasets, asks every question through
/v1/chat/completions with the official ``openai`` SDK, and prints, for all questions and for
the even/odd halves (question index in queries.jsonl: the even half is the one to tune on,
the odd half is held out):

- answer recall: share of answerable questions whose answer (citation markers stripped,
  case-folded, whitespace normalised) contains a gold answer string; a "yes"/"no" gold answer
  (hotpotqa, locomo) counts only when the answer starts with that word;
- gold-token recall: mean share of the best-matching gold answer's words (stop words left
  out) found among the answer's words (a yes/no gold answer: 1 when the answer starts with it);
- median answer length in words (citation markers not counted);
- refusals: share of answerable questions answered "My sources do not answer...";
- no-answer accuracy (squad2, locomo): share of unanswerable questions answered so;
- citation precision: share of the citations of answerable questions that point at one of
  the question's gold sources (squad2: its paragraph; hotpotqa, locomo: qrels/test.tsv);
  squad2's figure once counted the unanswerable questions' citations too, so it was higher;
- citation recall: share of answerable questions whose gold sources are all cited;
- locomo: speakers credited: share of answered questions with citations where every cited
  message's speaker (a contributor) is among the answer's credits;
- latency p50/p99 end to end (client side), the assistant's overhead (everything but the
  responder: search, citation checks, recording, HTTP) and the responder's time, as the
  server reports them;
- locomo: answer recall, gold-token recall and no-answer accuracy per question category.

Ingestion per set:

- squad2-dev-5: the 173 paragraphs as one data set of one contributor;
- hotpotqa-dev: the 2,440 paragraphs spread over 8 contributors by a hash of the title (one
  data set each), so that an answer drawing on two paragraphs shows a credit split;
- locomo-dev: one conversation at a time (names repeat across conversations): a fresh server
  on a fresh data dir per conversation, one data set per speaker (each speaker a contributor,
  rows carry ``speaker`` and ``timestamp``), then only that conversation's questions. Messages
  the intake takes for copies of stored ones are refused; each upload's line says how many.

    .venv/bin/python bench/answers.py [--set squad2-dev-5] [--data DIR] [--limit N]
    .venv/bin/python bench/answers.py --set hotpotqa-dev [--limit N]
    .venv/bin/python bench/answers.py --set locomo-dev [--conversations conv-26,conv-30] [--limit N]
    .venv/bin/python bench/answers.py --set locomo-dev --smoke   # 5 questions, one an unanswerable one
    .venv/bin/python bench/answers.py --dump A.jsonl              # also keep each answer and its scores
    .venv/bin/python bench/answers.py --save-sources S.json       # also keep each question's retrieved chunks
    .venv/bin/python bench/answers.py --set locomo-dev --save-passages P.json   # ... and what the responder read
    .venv/bin/python bench/answers.py --set locomo-dev --replay P.json          # the responder alone on those

``--save-passages`` keeps, for every question, the passages the assistant handed the extractive
responder (both retrieval steps, speakers, timestamps, next messages) with their source ids;
``--replay`` runs the responder alone on them in process, on any set, and prints the same table
(no HTTP, no recording, no latency; citations are the responder's own markers), about a minute
where the HTTP run takes several: the way to try a change of the answer layer before the HTTP
run that gives the figures that count.

``--smoke`` runs every code path in well under a minute: 5 questions (one of them unanswerable
when the set has any), locomo's first conversation only, hotpotqa's first 200 paragraphs plus
the asked questions' gold ones. tests/bench/test_answer_sets.py runs it on hotpotqa.

squad2-dev-5 only (the responder's constants were tuned on its even half; these read
squad2's gold fields):

    .venv/bin/python bench/answers.py --calibrate             # the earlier whole-paragraph citation thresholds, no server (bench/support_check.py measures the support check)
    .venv/bin/python bench/answers.py --save-sources S.json   # every question, for the two below
    .venv/bin/python bench/answers.py --offline S.json        # the responder alone on those chunks
    .venv/bin/python bench/answers.py --fit S.json            # fit the answerability rule (even half)

``--offline`` replays the saved retrieval through ``ExtractiveResponder`` in process (no HTTP,
no recording), which is how the responder's constants are tuned; the HTTP run gives the
figures that count. Citation precision offline is over the responder's own markers (its
sentences are verbatim, so the citation check keeps them all).
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import math
import re
import statistics
import string
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import openai
from eth_utils import to_checksum_address

from assistant.chat.citations import lexical_support, strip_markers
from assistant.chat.extractive import MODEL_ID, NO_ANSWER
from retrieval.lexical import analyse

CONTRIBUTOR = "0x000000000000000000000000000000000005c1Fa"
KEY = "bench-key"
DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("squad2-dev-5", "hotpotqa-dev", "locomo-dev")
DEFAULT_DATA = DATA_ROOT / SETS[0]
HOTPOT_CONTRIBUTORS = 8
SMOKE_LIMIT = 5
SPLITS = ("all", "even (dev)", "odd (held out)")
LOCOMO_CATEGORIES = ("single-hop", "multi-hop", "temporal", "open-domain", "adversarial")
# Words that say nothing about whether the answer holds the gold one ("the Normans" vs "Normans").
STOP_WORDS = frozenset({"a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "for", "by", "with",
                        "from", "as", "is", "was", "are", "were", "be"})
YES_NO = ("yes", "no")


def norm(text: str) -> str:
    return " ".join(text.casefold().split())


def squad_norm(text: str) -> str:
    """SQuAD's official answer normalisation (lower case, no punctuation, no articles, single
    spaces): "29 January, 2023" holds "29 January 2023", "the Normans" holds "Normans"."""
    text = "".join(ch for ch in text.casefold()
                   if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load(root: Path) -> tuple[list[dict], list[dict], dict[str, dict]]:
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (root / "queries.jsonl").open()]
    answers = {a["_id"]: a for a in map(json.loads, (root / "answers.jsonl").open())}
    return corpus, queries, answers


# --- metrics (pure; tests/bench/test_answer_sets.py) ---------------------------------------


def split_of(index: int) -> str:
    """The half a question belongs to, by its index in queries.jsonl."""
    return SPLITS[1] if index % 2 == 0 else SPLITS[2]


def tokens(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOP_WORDS]


def starts_with_word(answer: str, word: str) -> bool:
    """The answer opens with ``word`` (case-insensitive), leading punctuation allowed: "Yes, ..."
    but not "Yesterday..." nor "... and yes"."""
    return re.match(rf"\W*{re.escape(word.casefold())}\b", answer.casefold()) is not None


def is_yes_no(gold: str) -> bool:
    return norm(gold) in YES_NO


def answer_hit(answer: str, golds: Iterable[str], yes_no_at_start: bool = True) -> bool:
    """A gold answer string is in the answer; a yes/no gold answer only as the answer's first
    word (a "no" anywhere in a sentence says nothing), unless ``yes_no_at_start`` is off."""
    plain = norm(answer)
    padded = f" {squad_norm(answer)} "
    for gold in golds:
        if yes_no_at_start and is_yes_no(gold):
            if starts_with_word(plain, norm(gold)):
                return True
        elif squad_norm(gold) and f" {squad_norm(gold)} " in padded:
            return True
    return False


def gold_token_recall(answer: str, golds: Iterable[str], yes_no_at_start: bool = True) -> float:
    """Share of the best-matching gold answer's words found in the answer: partial credit for
    "Chief of Protocol of the United States" against "Chief of Protocol", and for answers
    that paraphrase around the gold words."""
    words = re.findall(r"\w+", answer.lower())
    best = 0.0
    for gold in golds:
        if yes_no_at_start and is_yes_no(gold):
            score = float(starts_with_word(answer, norm(gold)))
        else:
            # A gold answer made only of stop words ("The") is scored on those words.
            want = tokens(gold) or re.findall(r"\w+", gold.lower())
            score = sum(w in words for w in want) / len(want) if want else 0.0
        best = max(best, score)
    return best


def cites_all(cited: Iterable[str], gold_sources: Iterable[str]) -> bool:
    """Every gold source is cited (a question without gold sources cannot be)."""
    gold = set(gold_sources)
    return bool(gold) and gold <= set(cited)


def speakers_credited(cited: Iterable[str], speaker_of: dict[str, str], credits: Iterable[dict]) -> bool:
    """Every cited message's speaker is credited: ``speaker_of`` maps a source id to its
    speaker's contributor address; ``credits`` is the answer's [{contributor, amount}]."""
    credited = {c["contributor"] for c in credits}
    return all(speaker_of.get(s) in credited for s in cited)


def address_of(seed: str) -> str:
    """A stable made-up payout address per contributor of a benchmark set."""
    return to_checksum_address("0x" + hashlib.sha256(seed.encode()).hexdigest()[:40])


def hotpot_contributor(title: str) -> str:
    # By title, so that a paragraph keeps its contributor whatever the corpus order.
    k = int(hashlib.sha256(title.encode()).hexdigest(), 16) % HOTPOT_CONTRIBUTORS
    return address_of(f"hotpotqa:{k}")


def speaker_contributor(conversation: str, speaker: str) -> str:
    return address_of(f"{conversation}:{speaker}")


# --- data sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    index: int  # in queries.jsonl: decides the split
    id: str
    text: str
    answers: tuple[str, ...]  # empty: the sources do not answer it
    gold_sources: frozenset[str]
    category: str = ""
    conversation: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class Upload:
    name: str
    contributor: str
    rows: list[dict]


@dataclass(frozen=True)
class Session:
    """What one server gets: its uploads, then its questions."""
    label: str
    uploads: list[Upload]
    questions: list[Question]


@dataclass(frozen=True)
class DataSet:
    kind: str  # squad2 | hotpotqa | locomo
    corpus: list[dict]
    questions: list[Question]

    @property
    def yes_no_at_start(self) -> bool:
        # squad2 keeps plain containment, so its figures stay comparable with earlier runs.
        return self.kind != "squad2"

    @property
    def speaker_of(self) -> dict[str, str]:
        return {c["_id"]: speaker_contributor(c["conversation"], c["speaker"])
                for c in self.corpus if "speaker" in c}


def detect_kind(root: Path) -> str:
    """squad2, hotpotqa or locomo: from the folder's name, else from what the files hold."""
    name = root.resolve().name.lower()
    for kind in ("squad2", "hotpotqa", "locomo"):
        if kind in name:
            return kind
    with (root / "answers.jsonl").open() as f:
        first = json.loads(f.readline())
    if "is_impossible" in first:
        return "squad2"
    return "locomo" if "category" in first else "hotpotqa"


def read_qrels(root: Path) -> dict[str, set[str]]:
    gold: dict[str, set[str]] = {}
    with (root / "qrels" / "test.tsv").open() as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)  # header
        for qid, doc, score in rows:
            if int(score) > 0:
                gold.setdefault(qid, set()).add(doc)
    return gold


def load_set(root: Path, kind: str | None = None) -> DataSet:
    kind = kind or detect_kind(root)
    corpus, queries, answers = load(root)
    qrels = read_qrels(root) if kind != "squad2" else {}
    questions = []
    for i, q in enumerate(queries):
        a = answers[q["_id"]]
        if kind == "squad2":
            golds = () if a["is_impossible"] else tuple(a["answers"])
            sources = frozenset([q["metadata"]["source_paragraph"]])
        else:
            golds = () if a.get("category") == "adversarial" else tuple(a["answers"])
            sources = frozenset(qrels.get(q["_id"], ()))
        questions.append(Question(i, q["_id"], q["text"], golds, sources,
                                  a.get("category", ""), a.get("conversation", "")))
    return DataSet(kind, corpus, questions)


def row(c: dict) -> dict:
    """The JSONL row uploaded for a corpus entry: ``_id`` becomes ``id`` (it comes back as a
    citation's ``source_id``); locomo's extra fields go along (fields or metadata)."""
    return {"id": c["_id"], **{k: v for k, v in c.items() if k != "_id"}}


def sessions(data: DataSet, conversations: list[str] | None = None,
             corpus_ids: set[str] | None = None) -> list[Session]:
    """The servers to run, each with its uploads and all its questions; ``corpus_ids`` keeps
    only those corpus entries (a smoke run)."""
    corpus = [c for c in data.corpus if corpus_ids is None or c["_id"] in corpus_ids]
    if data.kind == "squad2":
        return [Session("squad2", [Upload("squad.jsonl", CONTRIBUTOR, [row(c) for c in corpus])], data.questions)]
    if data.kind == "hotpotqa":
        by_who: dict[str, list[dict]] = {}
        for c in corpus:
            by_who.setdefault(hotpot_contributor(c["title"]), []).append(row(c))
        uploads = [Upload(f"hotpotqa-{k}.jsonl", who, rows) for k, (who, rows) in enumerate(sorted(by_who.items()))]
        return [Session("hotpotqa", uploads, data.questions)]
    order = list(dict.fromkeys(c["conversation"] for c in data.corpus))
    unknown = set(conversations or ()) - set(order)
    if unknown:
        raise SystemExit(f"no conversation {', '.join(sorted(unknown))} in the set (it has {', '.join(order)})")
    out = []
    for conv in conversations or order:
        by_speaker: dict[str, list[dict]] = {}
        for c in corpus:
            if c["conversation"] == conv:
                by_speaker.setdefault(c["speaker"], []).append(row(c))
        uploads = [Upload(f"{conv}-{who}.jsonl", speaker_contributor(conv, who), rows)
                   for who, rows in by_speaker.items()]
        out.append(Session(conv, uploads, [q for q in data.questions if q.conversation == conv]))
    return out


def smoke_questions(questions: list[Question], n: int) -> list[Question]:
    """The first ``n``, one of them unanswerable when there is any, so that the no-answer
    figures are computed too (the first questions of a set are often all answerable)."""
    picked = questions[:n]
    spare = next((q for q in questions if not q.answerable), None)
    if spare is not None and all(q.answerable for q in picked):
        picked = [*picked[: n - 1], spare]
    return picked


def smoke_corpus(data: DataSet, questions: list[Question], distractors: int = 200) -> set[str] | None:
    """hotpotqa's smoke run ingests the asked questions' gold paragraphs and a few hundred
    others, not all 2,440 (a minute or more of embedding on a small machine); the other sets
    are small enough as they are."""
    if data.kind != "hotpotqa":
        return None
    keep = {c["_id"] for c in data.corpus[:distractors]}
    return keep.union(*(q.gold_sources for q in questions))


def plan_run(data: DataSet, limit: int, conversations: list[str] | None, smoke: bool) -> list[Session]:
    if not smoke:
        return [replace(s, questions=s.questions[:limit] if limit else s.questions)
                for s in sessions(data, conversations)]
    questions = smoke_questions(sessions(data, conversations)[0].questions, SMOKE_LIMIT)
    first = sessions(data, conversations, smoke_corpus(data, questions))[0]
    return [replace(first, questions=questions)]


def calibrate(root: Path) -> None:
    """Citation-check thresholds: a claim built from question + gold answer (a paraphrase of
    the gold paragraph) against the gold paragraph, and against the other paragraphs of the
    same article (same topic, wrong source)."""
    from retrieval.embedder import load_embedder
    from retrieval.settings import RetrievalSettings

    corpus, queries, answers = load(root)
    emb = load_embedder(RetrievalSettings())
    by_id = {c["_id"]: c for c in corpus}
    by_title: dict[str, list[str]] = {}
    for c in corpus:
        by_title.setdefault(c["title"], []).append(c["_id"])
    claims, gold, other = [], [], []
    for q in queries:
        a = answers[q["_id"]]
        if a["is_impossible"]:
            continue
        g = q["metadata"]["source_paragraph"]
        sibling = next((p for p in by_title[by_id[g]["title"]] if p != g), None)
        if sibling is None:
            continue
        claims.append(f"{q['text'].rstrip('?')} {a['answers'][0]}.")
        gold.append(by_id[g]["text"])
        other.append(by_id[sibling]["text"])
    cv, gv, ov = emb.embed(claims), emb.embed(gold), emb.embed(other)
    lex_g = [lexical_support(analyse(c), set(analyse(t))) for c, t in zip(claims, gold)]
    lex_o = [lexical_support(analyse(c), set(analyse(t))) for c, t in zip(claims, other)]
    cos_g = list((cv * gv).sum(1))
    cos_o = list((cv * ov).sum(1))
    print(f"claims: {len(claims)} (question + gold answer, against gold paragraph vs a sibling paragraph)")
    for name, pos, neg in (("lexical", lex_g, lex_o), ("cosine", cos_g, cos_o)):
        print(f"{name:8s} gold p10/p50/p90 = {pct(pos, 10):.2f}/{pct(pos, 50):.2f}/{pct(pos, 90):.2f}   "
              f"sibling p10/p50/p90 = {pct(neg, 10):.2f}/{pct(neg, 50):.2f}/{pct(neg, 90):.2f}")
    from assistant.chat.citations import COSINE_SUPPORTED, LEXICAL_FLOOR, LEXICAL_SUPPORTED
    def rule(lex: float, cos: float) -> bool:
        return lex >= LEXICAL_SUPPORTED or (cos >= COSINE_SUPPORTED and lex >= LEXICAL_FLOOR)
    acc_g = statistics.mean(float(rule(a, b)) for a, b in zip(lex_g, cos_g))
    acc_o = statistics.mean(float(rule(a, b)) for a, b in zip(lex_o, cos_o))
    print(f"rule (lex>={LEXICAL_SUPPORTED} or cos>={COSINE_SUPPORTED} and lex>={LEXICAL_FLOOR}): "
          f"accepts {acc_g:.3f} of gold, {acc_o:.3f} of sibling")


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Weights (last one the intercept) of an L2-regularised logistic regression, by Newton steps.

    Hand-rolled: a dozen lines of numpy against adding scikit-learn to a benchmark."""
    z = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = l2 * np.eye(len(w))
    reg[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) / len(y) + reg @ w
        hess = (z.T * (p * (1 - p))) @ z / len(y) + reg
        w -= np.linalg.solve(hess, grad)
    return w


def fit(root: Path, saved_path: Path, target: float, precision_floor: float) -> None:
    """Fit the answerability rule: a logistic regression of "the answer is right" (answerable
    and hit) against "unanswerable" on the even half, over the best score and the checks; each
    check's penalty is its weight in score units, the threshold the highest that keeps answer
    recall >= target on the even half, subject to citation precision >= precision_floor there.
    Answerable questions the responder misses anyway are left out of the regression: refusing
    them costs nothing."""
    from dataclasses import fields

    from assistant.chat.answerability import Evidence
    from assistant.chat.extractive import ExtractiveResponder
    from retrieval.embedder import load_embedder
    from retrieval.settings import RetrievalSettings

    _, queries, answers = load(root)
    saved = json.loads(saved_path.read_text())
    responder = ExtractiveResponder(load_embedder(RetrievalSettings()))
    checks = [f.name for f in fields(Evidence)]
    rows = []  # (index, label H/M/U, score, evidence vector, cites the gold paragraph)
    for i, q in enumerate(queries):
        sources = saved[q["_id"]]
        ranking = responder.rank(q["text"], [s["text"] for s in sources])
        a = answers[q["_id"]]
        if ranking is None:
            continue
        best = ranking.best
        chosen = responder.select(ranking)
        # The text the responder gives if it answers (best sentence plus a close neighbour).
        text = " ".join(ranking.candidates[k].sentence for k in chosen)
        ev = responder.evidence(q["text"], ranking, chosen)
        label = "U" if a["is_impossible"] else "H" if any(norm(g) in norm(text) for g in a["answers"]) else "M"
        gold_cited = sources[best.marker - 1]["source_id"] == q["metadata"]["source_paragraph"]
        rows.append((i, label, ranking.best_score, [float(getattr(ev, c)) for c in checks], gold_cited))
    even = [r for r in rows if r[0] % 2 == 0 and r[1] != "M"]
    x = np.array([[r[2], *r[3]] for r in even])
    y = np.array([r[1] == "H" for r in even], dtype=float)
    w = logistic(x, y)
    penalties = {c: round(max(0.0, float(-w[k + 1] / w[0])), 3) for k, c in enumerate(checks)}
    print("logistic weights:", dict(zip(["score", *checks, "intercept"], np.round(w, 3))))
    print("check fires on     right answers (even/odd)   unanswerables (even/odd)")
    for k, c in enumerate(checks):
        f = {(lab, h): sum(r[3][k] for r in rows if r[1] == lab and r[0] % 2 == h) for lab in "HU" for h in (0, 1)}
        print(f"  {c:16s} {f['H', 0]:6.0f} / {f['H', 1]:<6.0f}              {f['U', 0]:6.0f} / {f['U', 1]:<6.0f}")

    def adjusted(r: tuple) -> float:
        return r[2] - sum(penalties[c] * v for c, v in zip(checks, r[3]))

    def split_figures(half: int | None, threshold: float) -> tuple[float, float, float]:
        sel = [r for r in rows if half is None or r[0] % 2 == half]
        answerable = [r for r in sel if r[1] != "U"]
        unanswerable = [r for r in sel if r[1] == "U"]
        answered = [r for r in sel if adjusted(r) >= threshold]
        recall = sum(r[1] == "H" and adjusted(r) >= threshold for r in answerable) / max(len(answerable), 1)
        return (recall, sum(adjusted(r) < threshold for r in unanswerable) / max(len(unanswerable), 1),
                sum(r[4] for r in answered) / max(len(answered), 1))

    def best_threshold(pen: dict[str, float]) -> tuple[float, float]:
        """The highest threshold keeping even recall >= target, and the even no-answer accuracy
        there (-1 when citation precision is below the floor at it)."""
        penalties.update(pen)
        scores = sorted({adjusted(r) for r in rows if r[0] % 2 == 0 and r[1] == "H"}, reverse=True)
        for t in scores:
            recall, na, prec = split_figures(0, t)
            if recall >= target:
                # Halfway to the next lower score, so rounding the printed value keeps the same answers.
                lower = [x for x in scores if x < t]
                t = (t + lower[0]) / 2 if lower else t - 1e-3
                return t, na if prec >= precision_floor else -1.0
        return scores[-1], -1.0

    threshold, na = best_threshold(dict(penalties))
    print(f"logistic penalties: threshold {threshold:.3f}, even no-answer {na:.3f}")
    # Then coordinate ascent on the objective itself (even no-answer accuracy at even recall
    # >= target), one penalty at a time over a coarse grid, from the logistic penalties.
    grid = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0]
    # Two starts: the logistic penalties, and the rule in force (a check it lacks starting as a
    # veto); the one with the better even objective goes on. The logistic start alone got stuck
    # below the rule in force once a check was added (0.331 vs 0.392 even no-answer).
    from assistant.chat.answerability import RULE
    starts = [{c: min(grid, key=lambda g: abs(g - penalties[c])) for c in checks},
              {c: RULE.penalties.get(c, 1.0) for c in checks}]
    current = max(starts, key=lambda s: best_threshold(dict(s))[1])
    print(f"start: {'rule in force' if current is starts[1] else 'logistic'}, even no-answer {best_threshold(dict(current))[1]:.3f}")
    for _ in range(3):
        for c in checks:
            trials = [(best_threshold({**current, c: g})[1], -g, g) for g in grid]
            current[c] = max(trials)[2]
    threshold, na = best_threshold(current)
    print(f"RULE = Rule(threshold={threshold:.3f}, penalties={current})")
    for name, half in (("all", None), ("even (tuned)", 0), ("odd (held out)", 1)):
        recall, na, prec = split_figures(half, threshold)
        print(f"  {name:16s} recall {recall:.3f}  no-answer {na:.3f}  citation precision {prec:.3f}")


def offline(root: Path, saved_path: Path) -> None:
    """The responder alone on saved retrieval results: recall, words, no-answer, precision, time."""
    from assistant.chat.extractive import ExtractiveResponder
    from retrieval.embedder import load_embedder
    from retrieval.settings import RetrievalSettings

    _, queries, answers = load(root)
    saved = json.loads(saved_path.read_text())
    responder = ExtractiveResponder(load_embedder(RetrievalSettings()))
    for q in queries:  # warm the vector cache: time the decision, not first embeddings
        responder.answer(q["text"], [s["text"] for s in saved[q["_id"]]])
    report: dict[str, dict[str, list]] = {n: {k: [] for k in ("hit", "words", "na", "prec", "ms")}
                                          for n in ("all", "even (tuned)", "odd (held out)")}
    for i, q in enumerate(queries):
        sources = saved[q["_id"]]
        t = time.perf_counter()
        result = responder.answer(q["text"], [s["text"] for s in sources])
        ms = (time.perf_counter() - t) * 1000
        a = answers[q["_id"]]
        plain = strip_markers(result.text)
        gold = q["metadata"]["source_paragraph"]
        for name in ("all", "even (tuned)" if i % 2 == 0 else "odd (held out)"):
            m = report[name]
            m["ms"].append(ms)
            if a["is_impossible"]:
                m["na"].append(not result.answered)
            else:
                m["hit"].append(any(norm(g) in norm(plain) for g in a["answers"]))
                m["words"].append(len(plain.split()))
            m["prec"].extend(sources[k - 1]["source_id"] == gold for k in dict.fromkeys(p.marker for p in result.picks))
    print(f"{'split':16s} {'n':>5s} {'recall':>7s} {'med.words':>9s} {'no-ans':>7s} {'cit.prec':>8s} {'p50 ms':>7s}")
    for name, m in report.items():
        print(f"{name:16s} {len(m['ms']):5d} {np.mean(m['hit'] or [0]):7.3f} {statistics.median(m['words'] or [0]):9.0f} "
              f"{np.mean(m['na'] or [0]):7.3f} {np.mean(m['prec'] or [0]):8.3f} {pct(m['ms'], 50):7.2f}")


def replay(data: DataSet, saved_path: Path) -> None:
    """The responder alone on saved passages (``--save-passages``), scored and reported as the
    HTTP run is; questions with no saved passages are skipped."""
    from assistant.chat.extractive import ExtractiveResponder
    from assistant.chat.passages import Passage

    saved = json.loads(saved_path.read_text())
    responder = ExtractiveResponder(embedder())
    scores = []
    for q in data.questions:
        if q.id not in saved:
            continue
        entry = saved[q.id]
        passages = [Passage(**p) for p in entry["passages"]]
        t = time.perf_counter()
        result = responder.answer(q.text, passages)
        ms = (time.perf_counter() - t) * 1000
        cited = [entry["source_ids"][m - 1] for m in dict.fromkeys(p.marker for p in result.picks)]
        plain = strip_markers(result.text)
        scores.append(Score(q, plain, not result.answered, answer_hit(plain, q.answers, data.yes_no_at_start),
                            gold_token_recall(plain, q.answers, data.yes_no_at_start), cited, None, ms, 0.0, ms))
    print(f"{data.kind}: {len(scores)} questions replayed from {saved_path}")
    report(scores, data)


@functools.cache
def embedder():  # type: ignore[no-untyped-def]
    """One model for every server of the run (locomo starts one per conversation): loading
    it is most of a server's start."""
    from assistant.settings import load_settings
    from retrieval.embedder import load_embedder

    return load_embedder(load_settings(dev_api_key=KEY).retrieval)


def serve(data_dir: Path):  # type: ignore[no-untyped-def]
    from assistant.settings import load_settings
    from tests.conftest import start_server  # the same real server the API tests use

    settings = load_settings(data_dir=data_dir, dev_api_key=KEY, chat_rate_per_minute=0)
    return start_server(settings, embedder())


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    question: Question
    text: str
    citations: list[dict]
    credits: list[dict]
    timing: dict[str, float]
    latency_ms: float


def ingest(url: str, uploads: list[Upload]) -> None:
    t0 = time.perf_counter()
    stored = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=1800) as c:
        for up in uploads:
            body = "".join(json.dumps(r) + "\n" for r in up.rows).encode()
            r = c.post("/v1/datasets", params={"wait": "true"}, files={"file": (up.name, body)},
                       data={"contributor": up.contributor})
            r.raise_for_status()
            rep = r.json()
            stored += rep["chunks_stored"]
            print(f"  {up.name:24s} {up.contributor}  rows {rep['rows']:5d}  chunks stored {rep['chunks_stored']:5d}  "
                  f"duplicates {rep['chunks_duplicate']:3d}  near duplicates {rep['chunks_near_duplicate']:3d}  "
                  f"rows rejected {rep['rows_rejected']:3d}")
    rows = sum(len(u.rows) for u in uploads)
    print(f"  ingested {stored} chunks from {rows} rows in {len(uploads)} uploads in {time.perf_counter() - t0:.1f}s")


def ask(url: str, questions: list[Question]) -> Iterator[Reply]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
    client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "warm up"}])
    for q in questions:
        t = time.perf_counter()
        resp = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": q.text}])
        latency = (time.perf_counter() - t) * 1000
        extra = resp.model_extra or {}
        yield Reply(q, resp.choices[0].message.content or "", extra.get("citations", []),
                    extra["openchat"].get("credits", []), extra["openchat"]["timing_ms"], latency)


def run_session(session: Session, save_sources: dict[str, list[dict]] | None,
                save_passages: dict[str, dict] | None = None) -> list[Reply]:
    print(f"{session.label}: {len(session.questions)} questions")
    with tempfile.TemporaryDirectory() as tmp:
        live = serve(Path(tmp))
        try:
            ingest(live.url, session.uploads)
            replies = list(ask(live.url, session.questions))
            if save_sources is not None:
                assistant = live.server.config.app.state.assistant  # type: ignore[union-attr]
                for q in session.questions:
                    save_sources[q.id] = [{"text": s.text, "source_id": s.source_id}
                                          for s in assistant.searcher.search(q.text, assistant.top_k)]
            if save_passages is not None:
                assistant = live.server.config.app.state.assistant  # type: ignore[union-attr]
                for q in session.questions:
                    found = assistant.retrieve(q.text)
                    save_passages[q.id] = {"passages": [asdict(p) for p in found.passages()],
                                           "source_ids": [s.source_id for s in found.sources]}
        finally:
            live.stop()
    return replies


# --- scoring and tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    question: Question
    plain: str
    refused: bool
    hit: bool
    token_recall: float
    cited: list[str]
    credited: bool | None  # locomo, answered with citations: every cited speaker credited
    latency_ms: float
    overhead_ms: float
    model_ms: float


def score(reply: Reply, data: DataSet, speaker_of: dict[str, str]) -> Score:
    q = reply.question
    plain = strip_markers(reply.text)
    refused = reply.text.strip() == NO_ANSWER
    cited = [c["source_id"] for c in reply.citations]
    credited = None
    if data.kind == "locomo" and not refused and cited:
        credited = speakers_credited(cited, speaker_of, reply.credits)
    return Score(q, plain, refused, answer_hit(plain, q.answers, data.yes_no_at_start),
                 gold_token_recall(plain, q.answers, data.yes_no_at_start), cited, credited,
                 reply.latency_ms, float(reply.timing["overhead"]), float(reply.timing["model"]))


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def figures(scores: list[Score]) -> dict[str, float]:
    ans = [s for s in scores if s.question.answerable]
    una = [s for s in scores if not s.question.answerable]
    return {
        "n": len(scores),
        "recall": mean(s.hit for s in ans),
        "tok.rec": mean(s.token_recall for s in ans),
        "med.words": statistics.median([len(s.plain.split()) for s in ans]) if ans else float("nan"),
        "refused": mean(s.refused for s in ans),
        "no-ans": mean(s.refused for s in una),
        # Answerable questions only: an unanswerable one has no source that answers it.
        "cit.prec": mean(src in s.question.gold_sources for s in ans for src in s.cited),
        "cit.rec": mean(cites_all(s.cited, s.question.gold_sources) for s in ans),
        "credited": mean(s.credited for s in scores if s.credited is not None),
        "p50 ms": pct([s.latency_ms for s in scores], 50),
        "p99 ms": pct([s.latency_ms for s in scores], 99),
        "overhead p50": pct([s.overhead_ms for s in scores], 50),
        "responder p50": pct([s.model_ms for s in scores], 50),
    }


def formatted(column: str, value: float, width: int) -> str:
    if math.isnan(value):  # nan: the figure does not apply to this split (no such question)
        return f"{'-':>{width}s}"
    if column == "n":
        return f"{int(value):{width}d}"
    if column == "med.words":
        return f"{value:{width}.0f}"
    return f"{value:{width}.1f}" if column.endswith(("ms", "p50")) else f"{value:{width}.3f}"


def print_table(rows: list[tuple[str, dict[str, float]]], columns: list[str], first: str = "split") -> None:
    widths = [max(len(c), 6) for c in columns]
    print(f"{first:16s} " + " ".join(f"{c:>{w}s}" for c, w in zip(columns, widths)))
    for name, f in rows:
        print(f"{name:16s} " + " ".join(formatted(c, f[c], w) for c, w in zip(columns, widths)))


def report(scores: list[Score], data: DataSet) -> None:
    columns = ["n", "recall", "tok.rec", "med.words", "refused"]
    if any(not s.question.answerable for s in scores):
        columns.append("no-ans")
    columns += ["cit.prec", "cit.rec"]
    if data.kind == "locomo":
        columns.append("credited")
    columns += ["p50 ms", "p99 ms", "overhead p50", "responder p50"]
    rows = [(name, figures([s for s in scores if name == "all" or split_of(s.question.index) == name]))
            for name in SPLITS]
    print_table(rows, columns)
    if data.kind == "locomo":
        print()
        by_cat = [(cat, figures([s for s in scores if s.question.category == cat])) for cat in LOCOMO_CATEGORIES]
        print_table([(c, f) for c, f in by_cat if f["n"]], ["n", "recall", "tok.rec", "no-ans"], first="category")


def dump_line(s: Score, reply: Reply) -> str:
    q = s.question
    return json.dumps({"id": q.id, "q": q.text, "answerable": q.answerable, "gold": list(q.answers),
                       "category": q.category or None, "answer": reply.text, "cited": s.cited,
                       "gold_sources": sorted(q.gold_sources), "hit": s.hit,
                       "token_recall": round(s.token_recall, 3), "credited": s.credited}) + "\n"


# --- command line ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=SETS, default=SETS[0], dest="set_name",
                        help=f"data set under {DATA_ROOT} (default {SETS[0]})")
    parser.add_argument("--data", type=Path, help="data set folder (overrides --set; its kind is detected)")
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions (locomo: per conversation)")
    parser.add_argument("--conversations", help="locomo only: comma-separated conversations, e.g. conv-26,conv-30")
    parser.add_argument("--smoke", action="store_true",
                        help=f"tiny run through every code path: {SMOKE_LIMIT} questions, locomo one conversation, "
                             "hotpotqa a few hundred paragraphs")
    parser.add_argument("--dump", type=Path, help="write each question's answer as JSONL here")
    parser.add_argument("--save-sources", type=Path, help="write each question's retrieved chunks (JSON) here")
    parser.add_argument("--save-passages", type=Path,
                        help="write the passages the responder read for each question (JSON) here, for --replay")
    parser.add_argument("--replay", type=Path, help="replay saved passages through the responder alone (any set)")
    parser.add_argument("--calibrate", action="store_true", help="squad2 only: citation-check thresholds")
    parser.add_argument("--offline", type=Path, help="squad2 only: replay saved chunks through the responder alone")
    parser.add_argument("--fit", type=Path, help="squad2 only: fit the answerability rule on saved chunks (even half)")
    parser.add_argument("--target", type=float, default=0.80, help="--fit: answer recall to keep on the even half")
    parser.add_argument("--precision", type=float, default=0.89, help="--fit: citation precision to keep on the even half")
    args = parser.parse_args()
    args.data = args.data or DATA_ROOT / args.set_name
    args.kind = detect_kind(args.data)
    if args.kind != "squad2" and (args.calibrate or args.offline or args.fit):
        parser.error("--calibrate, --offline and --fit read squad2's gold fields: use them with squad2-dev-5")
    if args.conversations and args.kind != "locomo":
        parser.error("--conversations is for locomo-dev")
    return args


def main() -> None:
    args = parse_args()
    if args.calibrate:
        calibrate(args.data)
        return
    if args.offline:
        offline(args.data, args.offline)
        return
    if args.fit:
        fit(args.data, args.fit, args.target, args.precision)
        return
    data = load_set(args.data, args.kind)
    if args.replay:
        replay(data, args.replay)
        return
    conversations = args.conversations.split(",") if args.conversations else None
    plan = plan_run(data, args.limit, conversations, args.smoke)
    print(f"{data.kind} ({args.data}): {sum(len(s.questions) for s in plan)} questions, {len(plan)} server(s)")
    saved: dict[str, list[dict]] | None = {} if args.save_sources else None
    read: dict[str, dict] | None = {} if args.save_passages else None
    replies = [r for s in plan for r in run_session(s, saved, read)]
    if args.save_sources:
        args.save_sources.write_text(json.dumps(saved))
    if args.save_passages:
        args.save_passages.write_text(json.dumps(read))
    speaker_of = data.speaker_of
    scores = [score(r, data, speaker_of) for r in replies]
    if args.dump:
        with args.dump.open("w") as out:
            out.writelines(dump_line(s, r) for s, r in zip(scores, replies))
    print()
    report(scores, data)


if __name__ == "__main__":
    main()
