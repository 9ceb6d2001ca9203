"""Inputs the fuzzer found escaping the library's errors (tests/scoring/data/fuzz-corpus/), kept for good.

Each reproducer is the input as the fuzzer wrote it (a zip, or the zip of a folder case) with a
note: what was done to the valid input, what escaped before the fix, and how the input ends
now ("expected", and words its message must hold). Every entry point must end without an
escape (tests/scoring/fuzzkit/runner.py has the rules), in exactly that outcome, and without
taking more memory than one case may (several of these were bombs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fuzzkit import load_reproducer, run_case
from .fuzzkit.runner import CASE_BUDGET_MB, peak_rss_mb, reset_peak_rss

CORPUS = Path(__file__).parent / "data" / "fuzz-corpus"
NOTES = sorted(CORPUS.glob("*.json"))


def test_it_keeps_a_reproducer_beside_every_note():
    assert NOTES
    assert sorted(p.with_suffix(".json") for p in CORPUS.glob("*.zip")) == NOTES


@pytest.mark.parametrize("note", NOTES, ids=lambda p: p.stem)
def test_it_now_ends_the_input_as_its_note_says(note, fuzz_kit):
    expected = json.loads(note.read_text())
    case = load_reproducer(note.with_suffix(".zip"))
    assert reset_peak_rss(), "measuring one case's memory needs Linux's /proc/self/clear_refs"
    before = peak_rss_mb()
    result = run_case(case, fuzz_kit, fuzz_kit.folder / "work")
    assert peak_rss_mb() - before < CASE_BUDGET_MB
    assert [str(e) for e in result.escapes] == []
    assert result.outcome == expected["expected"]
    assert expected.get("words", "").lower() in result.message.lower(), result.message
