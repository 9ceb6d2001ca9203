"""The Ladder (scoring/ladder.py) against sequences worked out by hand."""

from __future__ import annotations

import math

import pytest

from scoring.ladder import LadderStep, ladder, ladder_score, round_to_step


def shown(scores, step):
    return [s.shown for s in ladder(scores, step)]


def test_the_first_score_is_shown_rounded_to_the_step():
    # 63.37 / 1.0 = 63.37 -> 63; with step 0.5: 126.74 -> 127 multiples -> 63.5
    assert shown([63.37], 1.0) == [63.0]
    assert shown([63.37], 0.5) == [63.5]
    assert shown([63.37], 2.0) == [64.0]  # 31.685 -> 32 multiples


def test_it_moves_only_for_a_score_more_than_a_step_above_the_shown_one():
    # step 1: 60.4 -> 60; 61.0 is exactly one step above 60: no change (strictly more is needed);
    # 61.2 > 61: shown 61; 61.9 is 0.9 above: no; 59 worse: no; 62.51 > 62: shown [62.51] = 63.
    steps = ladder([60.4, 61.0, 61.2, 61.9, 59.0, 62.51], 1.0)
    assert [s.shown for s in steps] == [60.0, 60.0, 61.0, 61.0, 61.0, 63.0]
    assert [s.moved for s in steps] == [True, False, True, False, False, True]
    assert [s.setter for s in steps] == [0, 0, 2, 2, 2, 5]


def test_the_comparison_is_with_the_rounded_shown_score_not_the_best_exact_one():
    # 70.4 shows 70; 71.3 is 1.3 above the shown 70 (only 0.9 above the exact 70.4): it moves, to 71.
    assert shown([70.4, 71.3], 1.0) == [70.0, 71.0]
    # 70.6 shows 71; 71.9 is only 0.9 above 71: no change, though it is 1.3 above the exact 70.6.
    assert shown([70.6, 71.9], 1.0) == [71.0, 71.0]


def test_a_step_of_a_tenth_is_decimal():
    # 70.1 + 0.1 is 70.2 exactly: 70.2 is not more than a step above; 70.21 is, and rounds to 70.2.
    assert shown([70.1, 70.2, 70.21, 70.25], 0.1) == [70.1, 70.1, 70.2, 70.2]
    # 70.25 vs shown 70.1: 0.15 > 0.1, shown [70.25]_0.1 = 70.3 (half up)
    assert shown([70.1, 70.25], 0.1) == [70.1, 70.3]


def test_halfway_rounds_up():
    assert round_to_step(62.5, 1.0) == 63.0
    assert round_to_step(61.5, 1.0) == 62.0  # not banker's rounding
    assert round_to_step(0.25, 0.5) == 0.5
    assert round_to_step(12.34, 5.0) == 10.0


def test_missing_scores_leave_it_as_it_was():
    steps = ladder([None, float("nan"), 55.2, None, 57.0], 1.0)
    assert steps == [LadderStep(None, False, None), LadderStep(None, False, None), LadderStep(55.0, True, 2),
                     LadderStep(55.0, False, 2), LadderStep(57.0, True, 4)]


def test_the_last_step_and_an_empty_ladder():
    assert ladder_score([40.0, 42.2, 41.0], 1.0) == LadderStep(42.0, False, 1)
    assert ladder_score([], 1.0) == LadderStep(None, False, None)


@pytest.mark.parametrize("step", [0, -1.0, math.nan, math.inf, "1"])
def test_a_bad_step_is_refused_in_words(step):
    with pytest.raises(ValueError, match="the Ladder's step must be a positive number"):
        ladder([50.0], step)
