"""The support check (assistant/chat/support.py) on the labelled set of bench/support_set.py.

Prints, per half (dev: tune; held-out: report) and per variant, how many examples there are
and the share judged right: supported for ``supporting`` and ``paraphrased`` (recall), not
supported for ``negated``, ``keyword-dump`` and ``question-echo`` (the targets call this
share their precision: of the texts that must earn nothing, how many earn nothing), then the
same by the rule that made each example, and the precision of "supported" over all variants.
The old bag-of-words check (a share of the sentence's terms, >= 0.6, or a chunk cosine >= 0.5
over a 0.25 floor; ``--baseline``) is run on the same examples for comparison.

Timing: one check of a sentence against a source, source sentence vectors cached (as the
answer path's ``VectorCache`` has them), the sentence's own vector not: median of
``--repeats`` passes over ``--timed`` examples, and the old check's time in the same process.

    .venv/bin/python bench/support_check.py                 # 200 items per data set, ~3,400 examples
    .venv/bin/python bench/support_check.py --smoke         # 8 items per data set, one timing pass
    .venv/bin/python bench/support_check.py --errors 5      # also print 5 wrong judgements per variant (dev)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from support_set import DATA, LABELS, SETS, Example, build

from assistant.chat import citations as cit
from assistant.chat.extractive import VectorCache
from assistant.chat.support import Source, SupportCheck, Thresholds

HALVES = ("dev", "held-out")


def old_check(e: Example, embed: cit.Embed) -> bool:
    """The check before support.py: citations.verify's bag-of-words rule, as it stood."""
    terms = cit.analyse(e.sentence)
    if not terms:
        return False
    lex = cit.lexical_support(terms, set(cit.analyse(e.source)))
    if lex >= 0.6:
        return True
    if lex < 0.25:
        return False
    v = embed([e.sentence, e.source])
    return float(v[0] @ v[1]) >= 0.5


def judge_all(examples: list[Example], embed: cit.Embed, thresholds: Thresholds) -> list[bool]:
    sources: dict[str, Source] = {}
    out = []
    for e in examples:
        src = sources.setdefault(e.source, Source.of(e.source))
        out.append(SupportCheck(e.question, embed, thresholds).judge(e.sentence, src).supported)
    return out


def report(examples: list[Example], verdicts: list[bool], title: str, by_rule: bool = True) -> None:
    print(f"\n{title}")
    print(f"{'half':9} {'variant':14} {'n':>5} {'right':>6}   (right = supported for label 1, not supported for label 0)")
    for h in HALVES:
        for v in LABELS:
            xs = [ok for e, ok in zip(examples, verdicts) if e.half == h and e.variant == v]
            if xs:
                right = sum(ok == bool(LABELS[v]) for ok in xs) / len(xs)
                print(f"{h:9} {v:14} {len(xs):5d} {right:6.3f}")
        said = [(e, ok) for e, ok in zip(examples, verdicts) if e.half == h and ok]
        if said:
            precision = sum(e.label for e, _ in said) / len(said)
            print(f"{h:9} {'(all) supported precision':29} {precision:.3f} of {len(said)}")
    if by_rule:
        rules: dict[tuple[str, str], list[bool]] = defaultdict(list)
        for e, ok in zip(examples, verdicts):
            if e.half == "held-out":
                rule = e.rule.split(" ", 1)[0] if e.rule.startswith("antonym") else e.rule
                rules[(e.variant, rule)].append(ok == bool(e.label))
        print("held-out by rule:")
        for (v, rule), oks in sorted(rules.items()):
            print(f"  {v:14} {rule:32} {len(oks):5d} {sum(oks) / len(oks):6.3f}")


def timing(examples: list[Example], embed_model: object, repeats: int, thresholds: Thresholds) -> None:
    cache = VectorCache(embed_model, 1_000_000)  # type: ignore[arg-type]
    sources = {e.source: Source.of(e.source) for e in examples}
    cache.get([s for src in sources.values() for s in src.sentences] + [e.source for e in examples])
    new_t, old_t = [], []
    for r in range(repeats):
        # A fresh sentence each pass (a suffix the analyser drops), so its vector is computed.
        fresh = [Example(e.item, e.half, e.variant, e.rule, f"{e.sentence}{' ' * (r + 1)}", e.source, e.question, e.label)
                 for e in examples]
        t0 = time.perf_counter()
        for e in fresh:
            SupportCheck(e.question, cache.get, thresholds).judge(e.sentence, sources[e.source])
        new_t.append((time.perf_counter() - t0) / len(fresh))
        fresh = [Example(e.item, e.half, e.variant, e.rule, f"{e.sentence}{' ' * (r + 1)}\t", e.source, e.question, e.label)
                 for e in examples]
        t0 = time.perf_counter()
        for e in fresh:
            old_check(e, cache.get)
        old_t.append((time.perf_counter() - t0) / len(fresh))
    new, old = statistics.median(new_t) * 1000, statistics.median(old_t) * 1000
    print(f"\ntiming over {len(examples)} checks, median of {repeats}: support check {new:.2f} ms/check, "
          f"old bag-of-words check {old:.2f} ms/check (ratio {new / old:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-set", type=int, default=200, help="items per data set (each gives up to 9 examples)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--smoke", action="store_true", help="8 items per data set, one timing pass over 20 checks")
    ap.add_argument("--repeats", type=int, default=5, help="timing passes")
    ap.add_argument("--timed", type=int, default=300, help="examples per timing pass")
    ap.add_argument("--baseline", action="store_true", help="also judge the set with the old bag-of-words check")
    ap.add_argument("--errors", type=int, default=0, help="print this many wrong judgements per variant (dev half)")
    args = ap.parse_args()
    if args.smoke:
        args.per_set, args.repeats, args.timed = 8, 1, 20
    missing = [name for name in SETS if not (args.data / name).is_dir()]
    if missing:
        sys.exit(f"{', '.join(missing)} not found under {args.data}: the labelled set is built from ../shared/data "
                 "(or pass --data)")

    from retrieval.embedder import load_embedder
    from retrieval.settings import RetrievalSettings

    t0 = time.perf_counter()
    examples = build(args.per_set, args.seed, args.data)
    print(f"{len(examples)} examples from {args.per_set} items per data set (seed {args.seed}) "
          f"in {time.perf_counter() - t0:.1f} s")
    model = load_embedder(RetrievalSettings())
    embed = VectorCache(model, 1_000_000).get
    thresholds = Thresholds()
    verdicts = judge_all(examples, embed, thresholds)
    report(examples, verdicts, f"support check ({thresholds})")
    if args.baseline:
        report(examples, [old_check(e, embed) for e in examples], "old bag-of-words check", by_rule=False)
    if args.errors:
        shown: dict[str, int] = defaultdict(int)
        print("\nwrong judgements (dev):")
        check_cache: dict[str, Source] = {}
        for e, ok in zip(examples, verdicts):
            if e.half == "dev" and ok != bool(e.label) and shown[e.variant] < args.errors:
                shown[e.variant] += 1
                v = SupportCheck(e.question, embed, thresholds).judge(
                    e.sentence, check_cache.setdefault(e.source, Source.of(e.source)))
                print(f"- {e.variant} [{e.rule}] {v.reason} lex={v.lexical} cos={v.cosine}\n    {e.sentence[:220]}")
    rng = np.random.default_rng(args.seed)
    picked = [examples[i] for i in rng.choice(len(examples), size=min(args.timed, len(examples)), replace=False)]
    timing(picked, model, args.repeats, thresholds)


if __name__ == "__main__":
    main()
