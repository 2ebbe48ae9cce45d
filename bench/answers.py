"""Answer benchmark on SQuAD 2.0 (squad2-dev-5): the extractive responder end to end over HTTP.

Starts the real app (embedded defaults: SQLite + Qdrant local mode) on a loopback port,
ingests the paragraphs through POST /v1/datasets, asks every question through
/v1/chat/completions with the official ``openai`` SDK, and prints:

- answer recall: share of answerable questions whose answer contains a gold answer string;
- median answer length in words (citation markers not counted);
- no-answer accuracy: share of unanswerable questions answered "My sources do not answer...";
- citation precision: share of verified citations that point at the gold paragraph;
- citation recall: share of answerable questions whose gold paragraph is cited;
- latency p50/p99 end to end (client side), and the assistant's overhead (everything but the
  responder: search, citation checks, recording, HTTP) as the server reports it.

Figures are printed for all questions and for the even/odd halves (the responder's constants
were tuned on the even half; the odd half is held out).

    .venv/bin/python bench/answers.py [--data ../shared/data/squad2-dev-5] [--limit N]
    .venv/bin/python bench/answers.py --calibrate   # citation-check thresholds, no server
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import openai

from assistant.chat.citations import lexical_support, strip_markers
from assistant.chat.extractive import MODEL_ID, NO_ANSWER
from retrieval.lexical import analyse

CONTRIBUTOR = "0x000000000000000000000000000000000005c1Fa"
KEY = "bench-key"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2-dev-5"


def norm(text: str) -> str:
    return " ".join(text.casefold().split())


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load(root: Path) -> tuple[list[dict], list[dict], dict[str, dict]]:
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (root / "queries.jsonl").open()]
    answers = {a["_id"]: a for a in map(json.loads, (root / "answers.jsonl").open())}
    return corpus, queries, answers


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


def serve(data_dir: Path):  # type: ignore[no-untyped-def]
    from assistant.settings import load_settings
    from retrieval.embedder import load_embedder
    from tests.conftest import start_server  # the same real server the API tests use

    settings = load_settings(data_dir=data_dir, dev_api_key=KEY, chat_rate_per_minute=0)
    return start_server(settings, load_embedder(settings.retrieval))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--dump", type=Path, help="write each question's answer as JSONL here")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.data)
        return
    corpus, queries, answers = load(args.data)
    if args.limit:
        queries = queries[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        live = serve(Path(tmp))
        try:
            rows = "".join(json.dumps({"id": c["_id"], "title": c["title"], "text": c["text"]}) + "\n" for c in corpus)
            t0 = time.perf_counter()
            with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600) as c:
                r = c.post("/v1/datasets", params={"wait": "true"}, files={"file": ("squad.jsonl", rows.encode())},
                           data={"contributor": CONTRIBUTOR})
                r.raise_for_status()
            print(f"ingested {r.json()['chunks_stored']} chunks from {len(corpus)} paragraphs in {time.perf_counter() - t0:.1f}s")
            client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0, timeout=60)
            client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "warm up"}])
            results = []
            for i, q in enumerate(queries):
                t = time.perf_counter()
                resp = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": q["text"]}])
                latency = (time.perf_counter() - t) * 1000
                results.append((i, q, resp, latency))
        finally:
            live.stop()
    dump = args.dump.open("w") if args.dump else None
    report: dict[str, dict[str, list]] = {"all": {}, "even (tuned)": {}, "odd (held out)": {}}
    for name in report:
        report[name] = {k: [] for k in ("hit", "words", "na", "prec", "crec", "lat", "over", "model")}
    for i, q, resp, latency in results:
        a = answers[q["_id"]]
        text = resp.choices[0].message.content or ""
        cites = resp.model_extra.get("citations", [])
        timing = resp.model_extra["openchat"]["timing_ms"]
        gold = q["metadata"]["source_paragraph"]
        plain = strip_markers(text)
        for name in ("all", "even (tuned)" if i % 2 == 0 else "odd (held out)"):
            m = report[name]
            m["lat"].append(latency)
            m["over"].append(timing["overhead"])
            m["model"].append(timing["model"])
            if a["is_impossible"]:
                m["na"].append(text.strip() == NO_ANSWER)
            else:
                m["hit"].append(any(norm(g) in norm(plain) for g in a["answers"]))
                m["words"].append(len(plain.split()))
                m["crec"].append(any(c["source_id"] == gold for c in cites))
            # Precision over answerable questions: an unanswerable one has no gold paragraph to
            # point at (its paragraph is the one the question was written against, though).
            m["prec"].extend(c["source_id"] == gold for c in cites)
        if dump:
            dump.write(json.dumps({"q": q["text"], "impossible": a["is_impossible"], "gold": a["answers"],
                                   "answer": text, "cited": [c["source_id"] for c in cites], "gold_paragraph": gold}) + "\n")
    print(f"{'split':16s} {'n':>5s} {'recall':>7s} {'med.words':>9s} {'no-ans':>7s} {'cit.prec':>8s} {'cit.rec':>8s} "
          f"{'p50 ms':>7s} {'p99 ms':>7s} {'overhead p50':>12s} {'responder p50':>13s}")
    for name, m in report.items():
        n = len(m["lat"])
        print(f"{name:16s} {n:5d} {np.mean(m['hit'] or [0]):7.3f} {statistics.median(m['words'] or [0]):9.0f} "
              f"{np.mean(m['na'] or [0]):7.3f} {np.mean(m['prec'] or [0]):8.3f} {np.mean(m['crec'] or [0]):8.3f} "
              f"{pct(m['lat'], 50):7.1f} {pct(m['lat'], 99):7.1f} {pct(m['over'], 50):12.1f} {pct(m['model'], 50):13.1f}")


if __name__ == "__main__":
    main()
