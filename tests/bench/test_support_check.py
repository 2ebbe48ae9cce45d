"""The support check's labelled set (bench/support_set.py) and one smoke run of its benchmark."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    # bench/ is scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


support_set = _load("support_set")
# The labelled set is built from the shared data sets, which live beside the checkout.
needs_data = pytest.mark.skipif(not all((support_set.DATA / name).is_dir() for name in support_set.SETS),
                                reason=f"the shared data sets {support_set.SETS} are missing under {support_set.DATA}")


def test_rules_rewrite_by_pattern() -> None:
    s = support_set
    assert s.move_leading_phrase("In 1066, the Normans conquered England.") == "The Normans conquered England in 1066."
    assert s.passive_to_active("The abbey was founded by Duke Richard.") == "Duke Richard founded the abbey."
    assert s.active_to_passive("Richard founded the abbey of Fécamp.") == "The abbey of Fécamp was founded by Richard."
    assert s.negate("The Normans were in Normandy.") == ("The Normans were not in Normandy.", "not")
    assert s.negate("The Normans did not reach Iceland.") == ("The Normans did reach Iceland.", "remove negation")
    assert s.negate("Rollo founded the duchy.") == ("Rollo never founded the duchy.", "never")
    swapped = s.antonym_swap("Sales increased after the tour.")
    assert swapped and swapped[0] == "Sales decreased after the tour."
    echoes = {rule: text for text, rule in s.echoes("In what country is Normandy located?")}
    assert echoes["question words as a statement"] == "In country is Normandy located."


def test_synonyms_are_attested_and_inflected() -> None:
    assert support_set.synonym("founded") == "established"
    assert support_set.synonym("regions") == "parts"
    rewritten = support_set.replace_synonyms("The duchy was founded in the northern regions.", random.Random(1))
    assert rewritten and rewritten != "The duchy was founded in the northern regions."


@needs_data
def test_the_set_is_deterministic_split_and_labelled() -> None:
    a = support_set.build(per_set=6, seed=3)
    assert a == support_set.build(per_set=6, seed=3)
    assert {e.variant for e in a} == set(support_set.LABELS)
    assert all(e.label == support_set.LABELS[e.variant] for e in a)
    halves: dict[str, set[str]] = {}
    for e in a:
        halves.setdefault(e.item, set()).add(e.half)
    assert all(len(h) == 1 for h in halves.values())  # an item's variants stay in one half
    assert {h for hs in halves.values() for h in hs} == {"dev", "held-out"}
    # Every supporting sentence is a sentence of its source; every variant differs from it.
    by_item = {e.item: e for e in a if e.variant == "supporting"}
    assert all(e.sentence in e.source for e in by_item.values())
    assert all(e.sentence != by_item[e.item].sentence for e in a if e.variant not in ("supporting", "other-source"))


@needs_data
def test_smoke_run_prints_every_variant_for_both_halves() -> None:
    done = subprocess.run([sys.executable, "bench/support_check.py", "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for half in ("dev", "held-out"):
        for variant in ("supporting", "paraphrased", "negated", "keyword-dump", "question-echo"):
            row = [ln for ln in lines if ln.split()[:2] == [half, variant]]
            assert len(row) == 1, (half, variant, done.stdout)
            assert 0.0 <= float(row[0].split()[3]) <= 1.0
    assert any(ln.startswith("timing over 20 checks") and "ms/check" in ln for ln in lines)
