"""Frozen reference numbers (TrackEval style): every field of every expression, exactly.

The inputs and expected files are in tests/scoring/data/frozen/ (see tests/scoring/frozen.py). A
failure here means a number changed: if that is intended, bump SCORER_VERSION and regenerate the
expected files with `python -m tests.scoring.frozen`, saying why in the commit.
"""

from __future__ import annotations

import csv
import json

import pytest

from scoring import SCORER_VERSION, evaluate, load_ground_truth

from .frozen import EXPECTED_JSON, GT, SUBMISSIONS, expected_csv

FROZEN = json.loads(EXPECTED_JSON.read_text())


@pytest.fixture(scope="module")
def gt():
    return load_ground_truth(GT)


def test_it_was_frozen_by_this_scorer_version():
    assert FROZEN["scorer_version"] == SCORER_VERSION, (
        "SCORER_VERSION changed: regenerate the frozen numbers with `python -m tests.scoring.frozen`")


def test_it_reads_the_frozen_ground_truth_unchanged(gt):
    assert gt.version == FROZEN["gt_version"]
    assert {s: sum(1 for _ in gt.expressions((s,))) for s in gt.splits} == {"short": 40, "medium": 20, "long": 12}


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_it_gives_every_frozen_number_of_every_expression(gt, name):
    result = evaluate(gt, SUBMISSIONS[name])
    with expected_csv(name).open(newline="") as handle:
        expected = list(csv.DictReader(handle))
    got = [{k: repr(v) if isinstance(v, float) else str(v) for k, v in row.as_row().items()}
           for row in result.expressions]
    assert len(got) == len(expected) == 72
    for row, frozen in zip(got, expected):
        assert row == frozen, f"{frozen['split']}/{frozen['video']}/{frozen['exp_id']}"


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_it_gives_every_frozen_split_number_and_warning(gt, name):
    result = evaluate(gt, SUBMISSIONS[name])
    frozen = FROZEN["submissions"][name]
    assert {split: {**{m: repr(v) for m, v in s.as_dict().items()}, "n_expressions": s.n_expressions}
            for split, s in result.summaries.items()} == frozen["summaries"]
    assert [w.code for w in result.warnings] == frozen["warnings"]
