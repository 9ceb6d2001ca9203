"""What the worker stores of a scored submission's statistics, and the boards' intervals and tie groups,
checked against an independent computation from the submission's own per-expression results."""

from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import pytest

from django.urls import reverse

from leaderboard.challenges.models import GroundTruthBundle
from leaderboard.submissions.analysis import metric_values
from leaderboard.submissions.models import Analysis, BoardRow, Score
from leaderboard.submissions.selectors import board_get
from scoring import METRICS, stats
from scoring.diagnostics import Traits

from .apiclient import client_for


def per_expression(submission) -> dict[tuple[str, str, str], dict[str, str]]:
    with submission.details.open("rb") as handle:
        rows = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8"))
        return {(r["split"], r["video"], r["exp_id"]): r for r in rows}


@pytest.fixture
def two(alice, carol, submit, score):
    return {"perfect": score(submit(alice, "perfect", method_name="Perfect")),
            "noisy": score(submit(carol, "noisy", method_name="Noisy"))}


def test_the_worker_stores_intervals_values_and_timelines_that_agree_with_the_per_expression_results(two, phase):
    submission = two["noisy"]
    bundle = GroundTruthBundle.objects.get(pk=phase.ground_truth_id)
    found = Traits.from_dict(bundle.traits)  # recorded when the ground truth was checked
    rows = per_expression(submission)
    analysis = Analysis.objects.get(submission=submission)
    assert analysis.gt_version == bundle.version == submission.gt_version
    keys = found.expression_keys()
    for index, metric in enumerate(METRICS):
        values = metric_values(bytes(analysis.values), index)
        assert values.tolist() == pytest.approx([float(rows[key][metric]) for key in keys], abs=1e-15)
    # The stored intervals are scoring.stats' on the same rows, with the phase's B.
    for score in Score.objects.filter(submission=submission):
        chosen = [k for k in keys if score.split == "overall" or k[0] == score.split]
        plan = stats.design(score.split, [k[:2] for k in chosen], bundle.version, samples=phase.bootstrap_samples)
        if not plan.informative:
            assert score.ci == {}  # one source video: no interval
            continue
        values = np.array([float(rows[k]["IoU_gold_pred"]) for k in chosen])
        low, high = 100 * stats.percentile_interval(plan.means(values))
        assert score.ci["IoU_gold_pred"] == pytest.approx([low, high], abs=1e-9)
        assert low <= score.IoU_gold_pred <= high
    timelines = json.loads(gzip.decompress(analysis.timelines.open("rb").read()))
    key = "short/" + "/".join(next(k for k in keys if k[0] == "short")[1:])
    row = rows[tuple(key.split("/"))]
    timeline = timelines[key]
    assert sum(stop - start for start, stop in timeline["gt"]) == int(row["n_gt"])
    assert sum(stop - start for start, stop in timeline["pred"]) == int(row["n_pred"])
    assert len(timeline["hits"]) == int(row["n_hit"])
    assert sum(iou < 0.5 for _, iou in timeline["hits"]) == int(row["n_low_iou"])


def test_distinguishable_rows_get_groups_of_their_own(two, phase):
    board = board_get(phase=phase, split="short")
    assert [(r.method, r.rank, r.tie_group, r.tied_with) for r in board.rows] == [
        ("Perfect", 1, 1, ()), ("Noisy", 2, 2, ())]
    # Independently: the paired test of the two submissions' own short-split results rejects.
    bundle = phase.ground_truth
    a, b = per_expression(two["perfect"]), per_expression(two["noisy"])
    keys = [k for k in Traits.from_dict(bundle.traits).expression_keys() if k[0] == "short"]
    plan = stats.design("short", [k[:2] for k in keys], bundle.version, samples=phase.bootstrap_samples)
    test = stats.paired_test(np.array([float(a[k]["IoU_gold_pred"]) for k in keys]),
                             np.array([float(b[k]["IoU_gold_pred"]) for k in keys]), plan)
    assert test.p_value < phase.tie_level
    assert board.rows[0].ci == Score.objects.get(submission=two["perfect"], split="short").ci


def test_a_stricter_level_ties_them_and_the_board_says_so(alice, carol, submit, score, phase):
    good, noisy = score(submit(alice, "good", method_name="Good")), score(submit(carol, "empty", method_name="Empty"))
    bundle = phase.ground_truth
    a, b = per_expression(good), per_expression(noisy)
    keys = [k for k in Traits.from_dict(bundle.traits).expression_keys() if k[0] == "short"]
    plan = stats.design("short", [k[:2] for k in keys], bundle.version, samples=phase.bootstrap_samples)
    p = stats.paired_test(np.array([float(a[k]["IoU_gold_pred"]) for k in keys]),
                          np.array([float(b[k]["IoU_gold_pred"]) for k in keys]), plan).p_value
    assert 0 < p < 0.05, p
    phase.tie_level = p / 2  # one test: Holm's threshold is the level itself
    phase.save()
    board = board_get(phase=phase, split="short")
    assert [(r.rank, r.tie_group, r.tied_with) for r in board.rows] == [(1, 1, (2,)), (2, 1, (1,))]
    body = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=short").json()
    assert [(r["rank"], r["tie_group"], r["tied_with"]) for r in body["rows"]] == [(1, 1, [2]), (2, 1, [1])]
    assert set(body["rows"][0]["ci"]) == set(METRICS)
    html = client_for().get(reverse("leaderboard", args=[phase.challenge.slug, phase.slug, "short"])).content.decode()
    assert "statistically tied with #2" in html and "statistically tied with #1" in html
    phase.tie_level = p * 2
    phase.save()
    assert [r.tie_group for r in board_get(phase=phase, split="short").rows] == [1, 2]


def test_a_split_of_one_video_cannot_tell_rows_apart(two, phase):
    # The tiny benchmark's long split is one video: no interval, and every row in one group.
    board = board_get(phase=phase, split="long")
    assert [(r.rank, r.tie_group) for r in board.rows] == [(1, 1), (2, 1)]
    assert all(r.ci is None for r in board.rows)


def test_the_same_predictions_from_two_teams_are_tied_at_any_level(alice, carol, submit, score, phase):
    score(submit(alice, "good", method_name="A"))
    score(submit(carol, "good", method_name="C"))
    rows = board_get(phase=phase, split="overall").rows
    assert [(r.rank, r.tie_group, r.tied_with) for r in rows] == [(1, 1, (1,)), (1, 1, (1,))]  # one rank, too


def test_groups_follow_the_primary_metric_only(two, phase):
    rows = board_get(phase=phase, split="short", metric="IoU_all").rows
    assert all(r.tie_group is None and r.tied_with == () for r in rows)
    assert all(r.ci for r in rows)  # the intervals stay


def test_a_row_without_an_analysis_has_no_group_and_breaks_no_chain(two, phase, alice, carol, submit, score):
    Analysis.objects.filter(submission=two["noisy"]).delete()
    phase.save()  # rebuild
    rows = {r.method: r for r in board_get(phase=phase, split="short").rows}
    assert rows["Noisy"].tie_group is None and rows["Perfect"].tie_group == 1
    assert BoardRow.objects.filter(phase=phase, split="short", tie_group__isnull=True).count() == 1


def test_the_ladder_hides_intervals_and_tie_groups_of_team_rows_until_the_phase_ends(two, phase, alice, organizer):
    import datetime as dt

    from django.utils import timezone

    phase.ladder, phase.ends_at = True, timezone.now() + dt.timedelta(days=3)
    phase.save()
    rows = board_get(phase=phase, split="short").rows
    assert [(r.ci, r.tie_group, r.tied_with) for r in rows] == [(None, None, ())] * 2
    url = f"/api/v1/submissions/{two['perfect'].pk}/"
    assert client_for(alice).get(url).json()["ci"] == {}
    assert set(client_for(organizer).get(url).json()["ci"]) == {"short", "overall"}  # organizers see them
    phase.ends_at = timezone.now() - dt.timedelta(seconds=1)
    phase.save()
    rows = board_get(phase=phase, split="short").rows
    assert all(r.ci and r.tie_group for r in rows)
    assert client_for(alice).get(url).json()["ci"]["short"]["IoU_gold_pred"]
