"""Bootstrap intervals, paired tests and tie groups (scoring.stats): hand computations and frozen numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring import evaluate, load_ground_truth
from scoring.stats import (
    Resampling,
    adjacent_p_values,
    cluster_of,
    design,
    holm_rejected,
    intervals,
    p_value,
    paired_test,
    percentile_interval,
    resampling,
    seed_for,
    tie_groups,
)

from .frozen import GT, SUBMISSIONS


def test_a_medium_clip_is_clustered_with_the_long_video_it_is_cut_from():
    assert cluster_of("medium", "ego_long_07--2") == "ego_long_07"
    assert cluster_of("long", "ego_long_07") == "ego_long_07"
    assert cluster_of("short", "a--b") == "a--b"  # only medium clips are cut from long videos


def test_resampled_means_weigh_each_drawn_video_by_its_expressions():
    # Clusters a (expressions 0, 1) and b (expression 2); values 1, 0, 1.
    plan = Resampling(members=np.array([0, 0, 1]), draws=np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]),
                      sizes=np.array([2.0, 1.0]))
    means = plan.means(np.array([1.0, 0.0, 1.0]))
    # a twice: (1+0+1+0)/4; b twice: (1+1)/2; a and b: (1+0+1)/3.
    assert means.tolist() == pytest.approx([2 / 4, 2 / 2, 2 / 3], abs=1e-15)


def test_each_resample_draws_as_many_videos_as_there_are_and_whole_videos_only():
    plan = resampling(["v1", "v1", "v2", "v3", "v3", "v3"], samples=500, seed=7)
    assert plan.draws.shape == (500, 3)
    assert (plan.draws.sum(axis=1) == 3).all()
    assert plan.sizes.tolist() == [2, 1, 3]
    # The expressions of one video move together: with a constant per video the mean is a mix of videos.
    values = np.array([0.2, 0.2, 0.5, 0.9, 0.9, 0.9])
    expected = (plan.draws @ np.array([0.4, 0.5, 2.7])) / (plan.draws @ plan.sizes)
    assert plan.means(values) == pytest.approx(expected, abs=1e-15)


def test_the_same_seed_gives_the_same_resamples_and_another_seed_others():
    a = resampling(["x", "y", "z"], samples=50, seed=seed_for("gt1", "short"))
    b = resampling(["x", "y", "z"], samples=50, seed=seed_for("gt1", "short"))
    c = resampling(["x", "y", "z"], samples=50, seed=seed_for("gt2", "short"))
    assert np.array_equal(a.draws, b.draws)
    assert not np.array_equal(a.draws, c.draws)
    # Stable across machines and numpy releases that keep PCG64: the seed is a hash, frozen here.
    assert seed_for("gt1", "short") == 17433881503989771855


def test_a_percentile_interval_is_numpys_linear_percentiles():
    resampled = np.arange(1, 101, dtype=float)  # 1 .. 100
    low, high = percentile_interval(resampled, 0.95)
    # 2.5th percentile at position 0.025 * 99 = 2.475 → 3 + 0.475; 97.5th at 96.525 → 97 + 0.525.
    assert (low, high) == pytest.approx((3.475, 97.525), abs=1e-12)


def test_the_p_value_is_the_normal_approximation_with_the_bootstrap_standard_error():
    # observed 2, resamples 1 and 3: sd (n - 1) = sqrt(2), z = 2 / sqrt(2) = sqrt(2), p = erfc(sqrt(2) / sqrt(2)).
    assert float(p_value(2.0, np.array([1.0, 3.0]))) == pytest.approx(math.erfc(1.0), abs=1e-15)
    assert float(p_value(2.0, np.array([1.0, 3.0]))) == pytest.approx(0.15729920705028513, abs=1e-15)
    # one statistic per column
    got = p_value(np.array([0.0, 1.0]), np.array([[-1.0, 0.0], [1.0, 2.0]]))
    assert got.tolist() == pytest.approx([1.0, math.erfc(1 / math.sqrt(2) / math.sqrt(2))])
    # every resample the same: no spread, so a zero difference is p 1 and any other p 0
    assert float(p_value(0.0, np.zeros(10))) == 1.0 and float(p_value(0.5, np.full(10, 0.5))) == 0.0


def test_a_long_board_can_reject_beyond_what_counting_resamples_allows():
    # Counting resamples would floor p at 2/1001; Holm over 29 tests needs p <= 0.05/29 = 0.0017.
    plan = resampling([str(i) for i in range(200)], samples=1000, seed=4)
    rng = np.random.default_rng(8)
    b = rng.random(200) * 0.5
    assert paired_test(b + 0.05, b, plan).p_value < 1e-10


def test_holm_steps_down_until_the_first_hypothesis_it_keeps():
    # m = 3: 0.01 ≤ 0.05/3 rejected; next smallest 0.03 > 0.05/2: kept, and so is everything after it.
    assert holm_rejected([0.01, 0.04, 0.03], 0.05) == [True, False, False]
    assert holm_rejected([0.001, 0.02, 0.04], 0.05) == [True, True, True]  # 0.001 ≤ .0167, .02 ≤ .025, .04 ≤ .05
    assert holm_rejected([0.2, 0.001], 0.05) == [False, True]


def test_rows_joined_by_kept_hypotheses_form_one_tie_group():
    # Four rows, tests between (0,1) rejected, (1,2) and (2,3) kept: groups {0}, {1, 2, 3}.
    assert tie_groups([0.01, 0.04, 0.03], 0.05) == [0, 1, 1, 1]
    assert tie_groups([], 0.05) == [0]
    assert tie_groups([0.001, 0.9, 0.001], 0.05) == [0, 1, 1, 3]


def test_two_identical_submissions_are_never_distinguishable():
    plan = resampling([str(i // 2) for i in range(40)], samples=1000, seed=1)
    a = np.random.default_rng(0).random(40)
    test = paired_test(a, a.copy(), plan)
    assert (test.difference, test.low, test.high, test.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_large_consistent_gap_is_significant_and_its_interval_holds_it():
    plan = resampling([str(i) for i in range(100)], samples=1000, seed=3)
    rng = np.random.default_rng(5)
    b = rng.random(100) * 0.5
    a = b + 0.2 + rng.normal(0, 0.01, 100)
    test = paired_test(a, b, plan)
    assert test.low < test.difference < test.high
    assert test.low > 19 and test.high < 21  # percent points
    assert test.p_value < 1e-12


def test_the_adjacent_tests_are_the_paired_tests_of_neighbours():
    plan = resampling([str(i % 10) for i in range(30)], samples=400, seed=11)
    rng = np.random.default_rng(2)
    columns = rng.random((30, 3))
    got = adjacent_p_values(columns, plan)
    assert got.tolist() == pytest.approx([paired_test(columns[:, 0], columns[:, 1], plan).p_value,
                                          paired_test(columns[:, 1], columns[:, 2], plan).p_value])


def test_the_intervals_of_the_frozen_submission_are_frozen():
    gt = load_ground_truth(GT)
    evaluation = evaluate(gt, SUBMISSIONS["groundedsam2"])
    found = intervals(evaluation.expressions, gt.version, splits=("short", "medium", "long"), overall=True,
                      samples=1000, seed=0)
    ci = found.as_dict()
    assert set(ci) == {"short", "medium", "long", "overall"}
    for split, summary in evaluation.summaries.items():
        for metric, value in summary.as_dict().items():
            low, high = ci[split][metric]
            assert low <= value <= high, (split, metric)
    # Frozen (B = 1000, seed 0, this ground truth): any change to the resampling shows here.
    assert ci["short"]["IoU_gold_pred"] == pytest.approx([11.385037565148878, 14.14392970611308], abs=1e-9)
    assert ci["overall"]["T_recall"] == [100.0, 100.0]  # a tracker's mask on every frame finds every frame


def test_the_vectorised_bootstrap_equals_resampling_videos_one_by_one():
    gt = load_ground_truth(GT)
    rows = [r for r in evaluate(gt, SUBMISSIONS["noisy"]).expressions if r.split == "medium"]
    plan = design("medium", [(r.split, r.video) for r in rows], gt.version, samples=300)
    clusters = sorted({cluster_of(r.split, r.video) for r in rows})
    by_cluster = {c: [r.scores.IoU_gold_pred for r in rows if cluster_of(r.split, r.video) == c] for c in clusters}
    slow = []
    for counts in plan.draws:  # each resample: every drawn video's expressions, as often as it was drawn
        picked = [v for c, n in zip(clusters, counts) for _ in range(int(n)) for v in by_cluster[c]]
        slow.append(sum(picked) / len(picked))
    assert plan.means(np.array([r.scores.IoU_gold_pred for r in rows])) == pytest.approx(slow, abs=1e-12)
    assert len(clusters) < len({r.video for r in rows})  # clips of one long video share a cluster


def test_the_split_design_is_shared_by_every_submission_of_a_ground_truth_version():
    keys = [("medium", "L1--0"), ("medium", "L1--1"), ("medium", "L2--0")]
    first = design("medium", keys, "v1", samples=200)
    again = design("medium", keys, "v1", samples=200)
    assert first is again  # cached: one draw per version and split
    assert first.sizes.tolist() == [2, 1]  # L1's two clips are one cluster
