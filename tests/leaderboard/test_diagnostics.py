"""A submission's diagnostics (leaderboard/submissions/diagnostics.py) as each persona gets them, in the API and on
the submission page: a test phase (no per-video details for teams) withholds the buckets under the phase's
min_bucket_size and everything per video or per frame; a development phase shows its team everything about its
own submission; while the Ladder runs nobody but the organizers gets any diagnostics. And the numbers: the
by-trait results and the error types equal a computation made here from the submission's per-expression CSV and
the ground truth's traits."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
from collections import defaultdict

import pytest
from django.test import Client
from django.utils import timezone

from leaderboard.challenges.services import phase_create
from leaderboard.submissions.boards import board_refresh
from leaderboard.submissions.diagnostics import LADDER_MESSAGE, UNSCORED_MESSAGE
from scoring import METRICS

MIN_BUCKET = 5  # the tiny ground truth's buckets hold 3 to 7 of its 11 expressions: some under, some over
PERSONAS = ("owner", "teammate", "other_team", "outsider", "anonymous", "organizer")
SEE_ALL_BUCKETS_IN_TEST_PHASE = {"organizer"}
SEE_ALL_BUCKETS_IN_DEV_PHASE = {"owner", "teammate", "organizer"}
FULL_KEYS = {"submission", "available", "message", "details", "gt_version", "primary_metric", "metrics",
             "min_bucket_size", "k", "traits", "by_trait", "withheld", "baselines", "errors"}
DETAIL_KEYS = {"expressions", "timelines_url"}


@pytest.fixture
def users(alice, bob, carol, eve, organizer):
    return {"owner": alice, "teammate": bob, "other_team": carol, "outsider": eve, "anonymous": None,
            "organizer": organizer}


def client_as(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def scored(phase, users, submit, score):
    """In `phase` (or another): alice's scored submission and an organizer's scored baseline, on the boards."""

    def make(target=None, **phase_fields):
        target = target or phase
        type(target).objects.filter(pk=target.pk).update(min_bucket_size=MIN_BUCKET, **phase_fields)
        target.refresh_from_db()
        mine = score(submit(users["owner"], "good", phase=target, method_name="Our method"))
        baseline = score(submit(users["organizer"], "noisy", phase=target, method_name="Noisy baseline",
                                is_baseline=True))
        assert mine.status == baseline.status == "finished", (mine.failure_message, baseline.failure_message)
        board_refresh(phase_id=target.pk)
        return mine, baseline

    return make


@pytest.fixture
def dev_phase(challenge, ground_truth):
    return phase_create(challenge=challenge, slug="dev", name="Development phase", ground_truth=ground_truth,
                        show_expression_details=True)


def diagnostics_of(user, submission) -> tuple[int, dict]:
    r = client_as(user).get(f"/api/v1/submissions/{submission.pk}/diagnostics/")
    return r.status_code, r.json()


def timeline_of(user, submission, key: str):
    return client_as(user).get(f"/api/v1/submissions/{submission.pk}/timelines/", {"expression": key})


def page_of(user, submission):
    return client_as(user).get(f"/submissions/{submission.pk}/")


def embedded(html: str) -> dict:
    found = re.search(r'<script id="diagnostics-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page embeds no diagnostics"
    return json.loads(found.group(1))


def stored_buckets(submission) -> dict[str, list[dict]]:
    return submission.analysis.by_trait


def video_names(submission) -> set[str]:
    with submission.details.open("rb") as handle:
        return {row["video"] for row in csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8"))}


def timelines_file(submission) -> dict[str, dict]:
    with submission.analysis.timelines.open("rb") as handle:
        return json.loads(gzip.decompress(handle.read()))


# --- who sees which buckets and keys ----------------------------------------------------------------------


def _check(data: dict, submission, *, all_buckets: bool) -> None:
    stored = stored_buckets(submission)
    sizes = [b["n"] for rows in stored.values() for b in rows]
    assert min(sizes) < MIN_BUCKET <= max(sizes), "the fixture must have buckets on both sides of the limit"
    assert set(data) == FULL_KEYS | (DETAIL_KEYS if all_buckets else set())
    assert data["available"] is True and data["details"] is all_buckets
    for trait, rows in stored.items():
        expected = [b["bucket"] for b in rows if all_buckets or b["n"] >= MIN_BUCKET]
        assert [b["bucket"] for b in data["by_trait"][trait]] == expected, trait
    shown = [b for rows in data["by_trait"].values() for b in rows]
    if all_buckets:
        assert data["withheld"] is None
        assert any(b["n"] < MIN_BUCKET for b in shown)
    else:
        assert all(b["n"] >= MIN_BUCKET for b in shown)
        withheld = sum(1 for n in sizes if n < MIN_BUCKET)
        assert data["withheld"]["buckets"] == withheld > 0 and data["withheld"]["of"] == len(sizes)
        assert f"{withheld} of this submission's {len(sizes)} buckets" in data["withheld"]["note"]
        assert f"fewer than {MIN_BUCKET} expressions" in data["withheld"]["note"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_in_a_test_phase_only_organizers_see_small_buckets_and_per_frame_data(persona, users, scored):
    mine, baseline = scored()
    user = users[persona]
    status, data = diagnostics_of(user, mine)
    assert status == 200
    sees_all = persona in SEE_ALL_BUCKETS_IN_TEST_PHASE
    _check(data, mine, all_buckets=sees_all)
    # The baseline beside it, under the same rule.
    (shown_baseline,) = data["baselines"]
    assert shown_baseline["submission"] == baseline.pk and shown_baseline["method"] == "Noisy baseline"
    for trait, rows in stored_buckets(baseline).items():
        assert [b["bucket"] for b in shown_baseline["by_trait"][trait]] == [
            b["bucket"] for b in rows if sees_all or b["n"] >= MIN_BUCKET]

    key = next(iter(timelines_file(mine)))
    r = timeline_of(user, mine, key)
    assert r.status_code == (200 if sees_all else 403)
    if not sees_all:
        assert "shows no per-frame details" in r.json()["error"]
        assert "gt" not in r.json() and "hits" not in r.json()

    page = page_of(user, mine)
    assert page.status_code == 200
    html = page.content.decode()
    assert embedded(html) == data  # the page draws what the API serves
    assert 'id="diag-traits-chart"' in html and 'id="diag-errors-chart"' in html
    assert ('id="diag-timeline-chart"' in html) is sees_all
    # The tables under the charts list exactly the buckets shown (a baseline has the same, all expressions scored).
    for trait, rows in data["by_trait"].items():
        table = re.search(rf'<table class="compact" data-trait="{trait}">(.*?)</table>', html, re.S).group(1)
        assert re.findall(r'<tr><th scope="row">(.*?)</th>', table) == [
            b["bucket"].replace("<", "&lt;").replace(">", "&gt;") for b in rows]
    if not sees_all:
        # Nothing per video, anywhere in the API's answer or on the page.
        body = json.dumps(data)
        for video in video_names(mine):
            assert video not in body and video not in html
        assert data["withheld"]["note"] in html.replace("&#x27;", "'")


@pytest.mark.parametrize("persona", PERSONAS)
def test_in_a_development_phase_the_team_sees_everything_of_its_own_submission(persona, users, scored, dev_phase):
    mine, baseline = scored(dev_phase)
    user = users[persona]
    status, data = diagnostics_of(user, mine)
    assert status == 200
    sees_all = persona in SEE_ALL_BUCKETS_IN_DEV_PHASE
    _check(data, mine, all_buckets=sees_all)
    # A baseline is nobody's team's: its small buckets are the organizers' only, in any phase.
    (shown_baseline,) = data["baselines"]
    for trait, rows in stored_buckets(baseline).items():
        assert [b["bucket"] for b in shown_baseline["by_trait"][trait]] == [
            b["bucket"] for b in rows if persona == "organizer" or b["n"] >= MIN_BUCKET]

    stored = timelines_file(mine)
    if sees_all:
        assert data["expressions"] == list(stored)
        assert data["timelines_url"] == f"/api/v1/submissions/{mine.pk}/timelines/"
    for key in list(stored)[:3]:
        r = timeline_of(user, mine, key)
        assert r.status_code == (200 if sees_all else 403), r.content
        if sees_all:
            split, video, exp_id = key.split("/")
            assert r.json() == {"submission": mine.pk, "expression": key, "split": split, "video": video,
                                "exp_id": exp_id, **stored[key], "low_iou_below": 0.5}
    html = page_of(user, mine).content.decode()
    assert ('id="diag-timeline-chart"' in html) is sees_all
    assert (f'<option value="{key}">' in html) is sees_all


def test_a_timeline_asked_for_badly_is_answered_in_a_sentence(users, scored, dev_phase):
    mine, _ = scored(dev_phase)
    owner = users["owner"]
    unknown = timeline_of(owner, mine, "short/no_such_video/0")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": f"Submission {mine.pk} has no timeline of the expression "
                                       "'short/no_such_video/0'; its diagnostics list the expressions it has.",
                              "detail": {"expression": "short/no_such_video/0"}}
    missing = client_as(owner).get(f"/api/v1/submissions/{mine.pk}/timelines/")
    assert missing.status_code == 400 and "?expression=split/video/exp_id" in missing.json()["error"]
    long = timeline_of(owner, mine, "x" * 301)
    assert long.status_code == 400 and "at most 300 characters" in long.json()["error"]


def test_a_private_submission_does_not_exist_for_others(users, submit, score, phase):
    private = score(submit(users["owner"], is_public=False))
    for persona in ("other_team", "outsider", "anonymous"):
        r = client_as(users[persona]).get(f"/api/v1/submissions/{private.pk}/diagnostics/")
        assert r.status_code == 404
        assert r.json()["error"] == f"There is no submission {private.pk} that you can see."
        assert timeline_of(users[persona], private, "short/short_000/0").status_code == 404
        assert page_of(users[persona], private).status_code == 404
    assert diagnostics_of(users["teammate"], private)[0] == 200


@pytest.mark.parametrize("persona", PERSONAS)
def test_while_the_ladder_runs_only_organizers_get_diagnostics(persona, users, scored, dev_phase):
    mine, _ = scored(dev_phase, ladder=True, ends_at=timezone.now() + dt.timedelta(days=3))
    user = users[persona]
    status, data = diagnostics_of(user, mine)
    assert status == 200
    key = next(iter(timelines_file(mine)))
    html = page_of(user, mine).content.decode()
    if persona == "organizer":
        assert data["available"] is True and data["details"] is True
        assert timeline_of(user, mine, key).status_code == 200
        assert 'id="diagnostics-data"' in html
        return
    assert data == {"submission": mine.pk, "available": False, "message": LADDER_MESSAGE}
    r = timeline_of(user, mine, key)
    assert r.status_code == 403 and r.json()["error"] == LADDER_MESSAGE
    assert 'id="diagnostics-data"' not in html and "chart.umd.min.js" not in html
    assert "diagnostics are kept back until the phase ends" in html


def test_before_scoring_there_are_no_diagnostics(users, submit):
    queued = submit(users["owner"])
    status, data = diagnostics_of(users["owner"], queued)
    assert (status, data) == (200, {"submission": queued.pk, "available": False, "message": UNSCORED_MESSAGE})
    assert UNSCORED_MESSAGE == "No diagnostics for this submission yet: they are made when it is scored."
    r = timeline_of(users["organizer"], queued, "short/short_000/0")
    assert r.status_code == 409 and "made when it is scored" in r.json()["error"]
    assert 'id="diagnostics"' not in page_of(users["owner"], queued).content.decode()  # nothing to say yet


# --- the numbers ----------------------------------------------------------------------------------------


def _per_expression(submission) -> list[dict[str, str]]:
    with submission.details.open("rb") as handle:
        return list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")))


def _bucket_of(spec: dict, trait: str, value) -> str:
    """The bucket of a value, by the rule docs/diagnostics.md states (written out again here, not imported)."""
    if value is None:
        return "none"
    if trait == "first_frames":
        return spec["buckets"][1] if value else spec["buckets"][0]
    return spec["buckets"][sum(1 for edge in spec["edges"] if value > edge)]


def by_hand(submission) -> dict[str, dict[str, dict[str, float]]]:
    """{trait: {bucket: {"n", metric...}}} from the per-expression CSV and the bundle's traits."""
    traits = submission.phase.ground_truth.traits
    of = {(e["split"], e["video"], e["exp_id"]): e for e in traits["expressions"]}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for trait, spec in traits["traits"].items():
        groups: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in _per_expression(submission):
            groups[_bucket_of(spec, trait, of[(row["split"], row["video"], row["exp_id"])][trait])].append(row)
        out[trait] = {bucket: {"n": len(rows), **{m: 100 * sum(float(r[m]) for r in rows) / len(rows)
                                                   for m in METRICS}}
                      for bucket, rows in groups.items()}
    return out


def test_the_numbers_by_trait_are_the_per_expression_means_of_each_bucket(users, scored, dev_phase):
    mine, baseline = scored(dev_phase)
    status, data = diagnostics_of(users["organizer"], mine)
    assert status == 200
    bundle = mine.phase.ground_truth
    bundle.refresh_from_db()
    assert data["k"] == bundle.traits["k"] == 5
    assert [t["name"] for t in data["traits"]] == ["presence", "trajectories", "trajectory_length", "area",
                                                   "adjacent_iou", "frames", "first_frames"]
    for t in data["traits"]:
        spec = bundle.traits["traits"][t["name"]]
        assert (t["label"], t["unit"], t["edges"], t["buckets"]) == (spec["label"], spec["unit"], spec["edges"],
                                                                     spec["buckets"])
    for shown, submission in ((data["by_trait"], mine), (data["baselines"][0]["by_trait"], baseline)):
        expected = by_hand(submission)
        assert set(shown) == set(expected)
        for trait, rows in shown.items():
            assert {r["bucket"] for r in rows} == set(expected[trait]), trait
            for r in rows:
                hand = expected[trait][r["bucket"]]
                assert r["n"] == hand["n"]
                for m in METRICS:
                    assert r[m] == pytest.approx(hand[m], abs=1e-9), (trait, r["bucket"], m)
    # Each trait's buckets hold every expression once.
    n = len(_per_expression(mine))
    assert all(sum(r["n"] for r in rows) == n for rows in data["by_trait"].values())
    assert data["by_trait"]["presence"] != data["baselines"][0]["by_trait"]["presence"]  # two methods differ


def test_the_error_types_are_the_frame_counts_of_the_csv(users, scored, dev_phase):
    mine, _ = scored(dev_phase)
    _, data = diagnostics_of(users["owner"], mine)
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in _per_expression(mine):
        for split in (row["split"], "overall"):
            total = sums[split]
            for i, v in enumerate((1, int(row["n_gt"]), int(row["n_pred"]), int(row["n_hit"]), int(row["n_low_iou"]))):
                total[i] += v
    assert list(data["errors"]) == [s for s in ("short", "medium", "long", "overall") if s in sums]
    for split, (expressions, gt, pred, hit, low) in sums.items():
        e = data["errors"][split]
        assert (e["expressions"], e["gt_frames"], e["pred_frames"], e["hits"]) == (expressions, gt, pred, hit)
        assert (e["missed"], e["hallucinated"], e["low_iou"]) == (gt - hit, pred - hit, low)
        assert e["missed_pct"] == pytest.approx(100 * (gt - hit) / gt)
        assert e["hallucinated_pct"] == pytest.approx(100 * (pred - hit) / pred)
        assert e["low_iou_pct"] == pytest.approx(100 * low / hit)
    assert sums["overall"][4] > 0 and sums["overall"][2] > sums["overall"][3]  # the fixture has every kind


def test_a_timeline_agrees_with_the_csv(users, scored, dev_phase):
    mine, _ = scored(dev_phase)
    for row in _per_expression(mine):
        key = f"{row['split']}/{row['video']}/{row['exp_id']}"
        t = timeline_of(users["owner"], mine, key).json()
        frames = lambda ranges: sum(stop - start for start, stop in ranges)  # noqa: E731
        assert t["n"] == int(row["n_frames"])
        assert (frames(t["gt"]), frames(t["pred"]), len(t["hits"])) == (int(row["n_gt"]), int(row["n_pred"]),
                                                                         int(row["n_hit"]))
        assert sum(1 for _, iou in t["hits"] if iou < 0.5) == int(row["n_low_iou"])


def test_a_baseline_on_a_board_not_yet_revealed_is_shown_to_organizers_only(users, scored):
    mine, baseline = scored(visibility="private", reveal_at=timezone.now() + dt.timedelta(days=5))
    assert diagnostics_of(users["owner"], mine)[1]["baselines"] == []
    assert [b["submission"] for b in diagnostics_of(users["organizer"], mine)[1]["baselines"]] == [baseline.pk]
    assert "Noisy baseline" not in page_of(users["owner"], mine).content.decode()
