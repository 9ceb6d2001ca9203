"""`egomask eval --ci` and `egomask compare`, as real subprocesses, on the frozen set (an official
Grounded-SAM2 tree and a noisy one) and on hand-made trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scoring import METRICS, evaluate, load_ground_truth, stats

from .conftest import box, write_gt, write_pred_json
from .frozen import GT, SUBMISSIONS
from .test_cli import assert_one_error_line, egomask


def test_eval_ci_json_gives_each_split_its_intervals_in_percent_as_the_server_stores_them():
    done = egomask("eval", "--gt", GT, "--pred", SUBMISSIONS["noisy"], "--json", "--ci", "--no-cache")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    gt = load_ground_truth(GT)
    evaluation = evaluate(gt, SUBMISSIONS["noisy"])
    expected = stats.intervals(evaluation.expressions, gt.version, splits=("short", "medium", "long"),
                               overall=True).as_dict()
    for split, values in got.items():
        assert set(values) == {*METRICS, "ci"}
        assert values["ci"] == expected[split]
        for metric in METRICS:
            low, high = values["ci"][metric]
            assert low <= values[metric] <= high
    # Frozen: B = 1000, seed 0 on this ground truth (the same numbers test_stats freezes in process).
    assert got["overall"]["ci"]["IoU_gold_pred"] == pytest.approx([8.16411251723428, 10.836214950233586], abs=1e-9)


def test_eval_without_ci_prints_what_it_always_did():
    done = egomask("eval", "--gt", GT, "--pred", SUBMISSIONS["noisy"], "--json")
    assert all("ci" not in values for values in json.loads(done.stdout).values())


def test_eval_ci_prints_a_table_of_intervals_and_says_how_they_were_made():
    done = egomask("eval", "--gt", GT, "--pred", SUBMISSIONS["groundedsam2"], "--ci", "--samples", "200")
    assert done.returncode == 0, done.stderr
    assert "95% intervals (cluster bootstrap over videos, B=200, seed 0):" in done.stdout
    short = next(line for line in done.stdout.splitlines()[7:] if line.startswith("short"))
    assert len(short.split()) == 5 and "–" in short


def test_a_split_of_one_video_gets_no_interval_and_no_verdict(tmp_path: Path):
    frames = ["00000", "00001", "00002"]
    mask = box(4, 4, 0, 2, 0, 2)
    write_gt(tmp_path / "gt", {"v": {"split": "long", "frames": frames, "expressions": {"0": "1", "1": "1"}}},
             {("v", "1"): {f: mask for f in frames}})
    for name, masks in (("a", {f: mask for f in frames}), ("b", {"00000": mask})):
        for exp in ("0", "1"):
            write_pred_json(tmp_path / name, "long", "v", exp, "1", masks)
    done = egomask("eval", "--gt", tmp_path / "gt", "--pred", tmp_path / "a", "--json", "--ci")
    assert json.loads(done.stdout)["long"]["ci"] is None
    done = egomask("compare", tmp_path / "a", tmp_path / "b", "--gt", tmp_path / "gt", "--json")
    long = json.loads(done.stdout)["splits"]["long"]
    assert (long["ci"], long["p_value"]) == (None, 1.0)
    assert long["difference"] == pytest.approx(100 * (1 - 1 / 3))
    table = egomask("compare", tmp_path / "a", tmp_path / "b", "--gt", tmp_path / "gt").stdout
    assert "cannot tell: one video" in table


def test_compare_gives_the_paired_difference_its_interval_p_value_and_the_videos_that_differ_most():
    done = egomask("compare", SUBMISSIONS["groundedsam2"], SUBMISSIONS["noisy"], "--gt", GT, "--json", "--top", "3")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    gt = load_ground_truth(GT)
    a, b = evaluate(gt, SUBMISSIONS["groundedsam2"]), evaluate(gt, SUBMISSIONS["noisy"])
    for split, row in found["splits"].items():
        # The difference is the difference of the two scores the leaderboard shows.
        assert row["a"] == pytest.approx(a.summaries[split].IoU_gold_pred, abs=1e-9)
        assert row["difference"] == pytest.approx(a.summaries[split].IoU_gold_pred - b.summaries[split].IoU_gold_pred,
                                                  abs=1e-9)
        low, high = row["ci"]
        assert low <= row["difference"] <= high
        # ... and the test is scoring.stats' paired test on the same resamples.
        rows_a = [r for r in a.expressions if split == "overall" or r.split == split]
        rows_b = {(r.split, r.video, r.exp_id): r for r in b.expressions}
        plan = stats.design(split, [(r.split, r.video) for r in rows_a], gt.version)
        test = stats.paired_test(np.array([r.scores.IoU_gold_pred for r in rows_a]),
                                 np.array([rows_b[(r.split, r.video, r.exp_id)].scores.IoU_gold_pred for r in rows_a]),
                                 plan)
        assert (low, high, row["p_value"]) == pytest.approx((test.low, test.high, test.p_value), abs=1e-12)
    assert len(found["videos"]) == 3
    differences = [abs(v["difference"]) for v in found["videos"]]
    assert differences == sorted(differences, reverse=True)
    video = found["videos"][0]
    mine = [r.scores.IoU_gold_pred for r in a.expressions if (r.split, r.video) == (video["split"], video["video"])]
    assert video["a"] == pytest.approx(100 * sum(mine) / len(mine)) and video["expressions"] == len(mine)


def test_a_submission_compared_with_itself_is_never_better():
    done = egomask("compare", SUBMISSIONS["noisy"], SUBMISSIONS["noisy"], "--gt", GT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("not distinguishable at 5%") == 4


def test_compare_names_a_bad_file_in_one_line(tmp_path: Path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    line = assert_one_error_line(egomask("compare", SUBMISSIONS["noisy"], broken, "--gt", GT))
    assert "broken.zip" in line
