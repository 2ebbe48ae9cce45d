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
    .venv/bin/python bench/answers.py --save-sources S.json   # also keep each question's retrieved chunks
    .venv/bin/python bench/answers.py --offline S.json        # the responder alone on those chunks
    .venv/bin/python bench/answers.py --fit S.json            # fit the answerability rule (even half)

``--offline`` replays the saved retrieval through ``ExtractiveResponder`` in process (no HTTP,
no recording), which is how the responder's constants are tuned; the HTTP run gives the
figures that count. Citation precision offline is over the responder's own markers (its
sentences are verbatim, so the citation check keeps them all).
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
    parser.add_argument("--save-sources", type=Path, help="write each question's retrieved chunks (JSON) here")
    parser.add_argument("--offline", type=Path, help="replay saved chunks through the responder alone")
    parser.add_argument("--fit", type=Path, help="fit the answerability rule on saved chunks (even half)")
    parser.add_argument("--target", type=float, default=0.80, help="--fit: answer recall to keep on the even half")
    parser.add_argument("--precision", type=float, default=0.89, help="--fit: citation precision to keep on the even half")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.data)
        return
    if args.offline:
        offline(args.data, args.offline)
        return
    if args.fit:
        fit(args.data, args.fit, args.target, args.precision)
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
            if args.save_sources:
                assistant = live.server.config.app.state.assistant  # type: ignore[union-attr]
                saved = {q["_id"]: [{"text": s.text, "source_id": s.source_id}
                                    for s in assistant.searcher.search(q["text"], assistant.top_k)] for q in queries}
                args.save_sources.write_text(json.dumps(saved))
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
