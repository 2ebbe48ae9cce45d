"""The answer benchmark's metrics (bench/answers.py), and one smoke run of it over HTTP."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "answers.py"
HOTPOT = ROOT.parent / "shared" / "data" / "hotpotqa-dev"


def _load() -> ModuleType:
    # bench/ is scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("bench_answers", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_gold_token_recall_takes_the_best_gold_answer_without_stop_words() -> None:
    answer = "She was the Chief of Protocol of the United States [1]."
    assert bench.gold_token_recall(answer, ["Chief of Protocol"]) == 1.0
    # "j" is missing: 2 of the 3 content words.
    assert bench.gold_token_recall("Henry John Kaiser was an industrialist.", ["Henry J. Kaiser"]) == pytest.approx(2 / 3)
    assert bench.gold_token_recall("In the 10th century.", ["the 11th century", "10th century"]) == 1.0
    assert bench.gold_token_recall("Nothing relevant here.", ["Greenwich Village"]) == 0.0
    assert bench.gold_token_recall("anything", []) == 0.0


def test_gold_made_of_stop_words_is_scored_on_those_words() -> None:
    assert bench.gold_token_recall("It is the one.", ["The"]) == 1.0
    assert bench.gold_token_recall("It is one.", ["The"]) == 0.0


def test_yes_no_gold_counts_only_at_the_start_of_the_answer() -> None:
    assert bench.answer_hit("Yes, both are orchids [1][2].", ["yes"])
    assert bench.answer_hit('"No" - they were born in different years.', ["no"])
    assert not bench.answer_hit("Both are orchids, yes.", ["yes"])
    assert not bench.answer_hit("Yesterday they met.", ["yes"])
    assert not bench.answer_hit("There is no record of it.", ["no"])
    assert bench.gold_token_recall("No, he was not.", ["No"]) == 1.0
    assert bench.gold_token_recall("He had no brother.", ["no"]) == 0.0
    # squad2 keeps plain containment.
    assert bench.answer_hit("There is no record of it.", ["no"], yes_no_at_start=False)


def test_answer_hit_is_case_and_space_insensitive() -> None:
    assert bench.answer_hit("It lies in  FRANCE.", ["France"])
    assert bench.answer_hit("the 10th and\n11th centuries", ["10th and 11th centuries"])
    assert not bench.answer_hit("It lies in Spain.", ["France"])


def test_answer_hit_ignores_punctuation_and_articles_as_squad_does() -> None:
    assert bench.answer_hit('Gina said on 29 January 2023: "I launched it."', ["29 January, 2023"])
    assert bench.answer_hit("It was built by Normans.", ["the Normans"])
    assert bench.answer_hit("They cost $1,000.", ["1000"])
    # Whole words only: "May" is not found in "Mayor".
    assert not bench.answer_hit("The Mayor spoke.", ["May"])


def test_citation_recall_needs_every_gold_source() -> None:
    gold = {"hp-a", "hp-b"}
    assert bench.cites_all(["hp-b", "hp-x", "hp-a"], gold)
    assert not bench.cites_all(["hp-a", "hp-a"], gold)
    assert not bench.cites_all([], gold)
    assert bench.cites_all(["Normans_0"], {"Normans_0"})
    assert not bench.cites_all(["x"], set())  # nothing to cite: not a recall hit


def test_split_assignment_by_index_parity() -> None:
    assert [bench.split_of(i) for i in range(4)] == ["even (dev)", "odd (held out)"] * 2
    assert set(bench.SPLITS) == {"all", bench.split_of(0), bench.split_of(1)}


def test_speakers_credited_needs_every_cited_speaker() -> None:
    alice, bob = bench.speaker_contributor("conv-1", "Alice"), bench.speaker_contributor("conv-1", "Bob")
    speaker_of = {"m1": alice, "m2": bob}
    assert bench.speakers_credited(["m1", "m2"], speaker_of, [{"contributor": alice, "amount": 3},
                                                              {"contributor": bob, "amount": 2}])
    assert not bench.speakers_credited(["m1", "m2"], speaker_of, [{"contributor": alice, "amount": 5}])


def test_addresses_are_stable_checksummed_and_per_conversation() -> None:
    from retrieval.addresses import checksum_address

    a = bench.speaker_contributor("conv-26", "Caroline")
    assert a == bench.speaker_contributor("conv-26", "Caroline") == checksum_address(a)
    assert a != bench.speaker_contributor("conv-30", "Caroline")
    assert len({bench.hotpot_contributor(f"title {i}") for i in range(200)}) == bench.HOTPOT_CONTRIBUTORS


def test_kind_is_detected_from_the_folder_name_or_the_files(tmp_path: Path) -> None:
    (tmp_path / "answers.jsonl").write_text('{"_id": "q", "answers": ["x"], "category": "temporal"}\n')
    assert bench.detect_kind(tmp_path) == "locomo"
    (tmp_path / "answers.jsonl").write_text('{"_id": "q", "answers": [], "is_impossible": true}\n')
    assert bench.detect_kind(tmp_path) == "squad2"
    (tmp_path / "answers.jsonl").write_text('{"_id": "q", "answers": ["yes"]}\n')
    assert bench.detect_kind(tmp_path) == "hotpotqa"
    named = tmp_path / "locomo-small"
    named.mkdir()
    (named / "answers.jsonl").write_text('{"_id": "q", "answers": ["yes"]}\n')
    assert bench.detect_kind(named) == "locomo"  # the folder's name wins


def test_smoke_questions_take_in_one_unanswerable() -> None:
    def q(i: int, answerable: bool) -> object:
        return bench.Question(i, f"q{i}", "?", ("x",) if answerable else (), frozenset())

    qs = [q(0, True), q(1, True), q(2, True), q(3, False), q(4, True)]
    assert [x.index for x in bench.smoke_questions(qs, 2)] == [0, 3]
    assert [x.index for x in bench.smoke_questions(qs, 4)] == [0, 1, 2, 3]
    assert [x.index for x in bench.smoke_questions(qs[:3], 2)] == [0, 1]


def _rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("split"))
    return {"header": header.split(), **{line.split()[0]: line.split()[1:] for line in lines
                                          if line.startswith(("all ", "even ", "odd "))}}


@pytest.mark.slow
@pytest.mark.skipif(not HOTPOT.is_dir(), reason="../shared/data/hotpotqa-dev is missing")
def test_hotpotqa_smoke_run_and_its_replay(tmp_path: Path) -> None:
    saved = tmp_path / "passages.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--set", "hotpotqa-dev", "--smoke", "--save-passages", str(saved)],
                          cwd=ROOT, check=False, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    http = _rows(done.stdout)
    assert all(c in http["header"] for c in ("recall", "tok.rec", "cit.prec", "cit.rec", "p50"))
    assert [k for k in http if k != "header"] == ["all", "even", "odd"]
    # The responder alone on what it read over HTTP gives the same answers, so the same figures.
    again = subprocess.run([sys.executable, str(SCRIPT), "--set", "hotpotqa-dev", "--replay", str(saved)],
                           cwd=ROOT, check=False, capture_output=True, text=True, timeout=280)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "5 questions replayed" in again.stdout
    replayed = _rows(again.stdout)
    for column in ("n", "recall", "tok.rec", "med.words", "refused"):
        k = http["header"].index(column) - 1
        assert replayed["all"][k] == http["all"][k], column
