"""The board by trait and the comparison of submissions (comparisons.py, api_compare.py, views_compare.py).

The numbers are checked against an independent computation from each submission's per-expression CSV (what the
worker wrote beside the scores), and the leak rules per persona: the board's visibility, the phase's details,
the minimum bucket size, the Ladder."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import defaultdict

import numpy as np
import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.utils import timezone

from leaderboard.errors import ApplicationError, NotFound
from leaderboard.submissions import comparisons
from leaderboard.submissions.models import Analysis
from scoring import METRICS
from scoring.diagnostics import NONE_BUCKET, TRAITS, Traits
from scoring import stats
from scoring.stats import OVERALL, design, paired_test

from .authz_world import as_missing

PAGE = "/challenges/egomask/phases/test/"
SPLITS = ("short", "medium", "long", "overall")


def _details(submission) -> dict[tuple[str, str, str], dict[str, str]]:
    """The per-expression CSV of a scored submission, by (split, video, exp_id)."""
    with submission.details.open("rb") as handle:
        rows = list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")))
    return {(r["split"], r["video"], r["exp_id"]): r for r in rows}


def _traits(phase) -> Traits:
    phase.ground_truth.refresh_from_db()
    return Traits.from_dict(phase.ground_truth.traits)


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def pair(phase, alice, carol, submit, score):
    """Team A (good) and Team C (noisy), scored for real."""
    return score(submit(alice, "good", method_name="Good net")), score(submit(carol, "noisy", method_name="Noisy net"))


# --- the numbers --------------------------------------------------------------------------------------------


def test_it_pairs_the_differences_as_a_direct_computation_from_the_csv_does(phase, pair, organizer):
    a, b = pair
    result = comparisons.compare(phase=phase, submission_ids=[a.pk, b.pk], viewer=organizer)
    assert [s.split for s in result.splits] == list(SPLITS)
    rows_a, rows_b = _details(a), _details(b)
    for split in result.splits:
        scores_a = a.scores.get(split=split.split).metrics()
        scores_b = b.scores.get(split=split.split).metrics()
        assert split.scores == [scores_a, scores_b]
        keys = [k for k in rows_a if split.split == OVERALL or k[0] == split.split]
        plan = design(split.split, [k[:2] for k in keys], a.gt_version, samples=phase.bootstrap_samples)
        for metric in METRICS:
            got = split.differences[0][metric]
            # The paired difference is the difference of the two scores.
            assert got.difference == pytest.approx(scores_b[metric] - scores_a[metric], abs=1e-9)
            # And a paired test made here from the CSVs (in the CSV's order) gives the same interval and p.
            direct = paired_test(np.array([float(rows_b[k][metric]) for k in keys]),
                                 np.array([float(rows_a[k][metric]) for k in keys]), plan)
            assert got.ci == pytest.approx((direct.low, direct.high), abs=1e-9)
            assert got.p_value == pytest.approx(direct.p_value, abs=1e-12)
            assert got.n_expressions == len(keys) == split.n_expressions[0]
            assert got.distinguishable == (direct.p_value < phase.tie_level)
            assert got.videos == len({stats.cluster_of(*k[:2]) for k in keys})
        assert split.ci == [a.scores.get(split=split.split).ci, b.scores.get(split=split.split).ci]
    overall = next(s for s in result.splits if s.split == OVERALL)
    assert overall.differences[0][phase.primary_metric].distinguishable  # good vs noisy: far apart


def test_it_gives_each_trait_bucket_the_paired_difference_of_its_expressions(phase, pair, organizer):
    a, b = pair
    result = comparisons.compare(phase=phase, submission_ids=[a.pk, b.pk], viewer=organizer)
    traits, rows_a, rows_b, metric = _traits(phase), _details(a), _details(b), phase.primary_metric
    assert [t.trait for t in result.traits] == [t for t in TRAITS if t in traits.buckets]  # the order
    for compared in result.traits:
        bucketing = traits.buckets[compared.trait]
        members = defaultdict(list)
        for e in traits.expressions:
            members[bucketing.bucket(e.value(compared.trait))].append((e.split, e.video, e.exp_id))
        labels = [label for label in (*bucketing.labels, NONE_BUCKET) if members[label]]
        assert [(x.label, x.n) for x in compared.buckets] == [(label, len(members[label])) for label in labels]
        for bucket, got in zip(compared.buckets, compared.differences[0], strict=True):
            keys = members[bucket.label]
            a_values = np.array([float(rows_a[k][metric]) for k in keys])
            b_values = np.array([float(rows_b[k][metric]) for k in keys])
            direct = paired_test(b_values, a_values, design(OVERALL, [k[:2] for k in keys], a.gt_version,
                                                            samples=phase.bootstrap_samples))
            assert got.difference == pytest.approx(100 * (b_values.mean() - a_values.mean()), abs=1e-9)
            assert (got.ci, got.p_value) == (pytest.approx((direct.low, direct.high), abs=1e-9),
                                             pytest.approx(direct.p_value, abs=1e-12))


def test_it_lists_the_videos_that_differ_most(phase, pair, organizer):
    a, b = pair
    result = comparisons.compare(phase=phase, submission_ids=[a.pk, b.pk], viewer=organizer)
    rows_a, rows_b, metric = _details(a), _details(b), phase.primary_metric
    by_video = defaultdict(list)
    for key in rows_a:
        by_video[key[:2]].append(key)
    expected = sorted(((100 * np.mean([float(rows_b[k][metric]) - float(rows_a[k][metric]) for k in keys]),
                        video, len(keys)) for video, keys in by_video.items()), key=lambda t: -abs(t[0]))
    got = result.videos[0]
    assert len(got) == min(10, len(by_video))
    assert [((v.split, v.video), v.expressions) for v in got] == [(video, n) for _, video, n in expected[:10]]
    assert [v.difference for v in got] == pytest.approx([d for d, _, _ in expected[:10]], abs=1e-9)
    assert all(v.difference == pytest.approx(v.other - v.reference) for v in got)


def test_it_says_when_two_submissions_are_not_distinguishable(phase, alice, carol, submit, score, client):
    a = score(submit(alice, "good", method_name="Good net"))
    b = score(submit(carol, "good", method_name="Same net"))  # the same predictions
    html = client.get(PAGE + f"compare/?submissions={a.pk},{b.pk}").content.decode()
    soup = BeautifulSoup(html, "html.parser")
    cells = {section["data-split"]: section.select(".compare-differences td.difference")
             for section in soup.select(".split-comparison")}
    assert list(cells) == list(SPLITS) and all(len(row) == len(METRICS) for row in cells.values())
    assert all(re.search(r"p = 1\.000", cell.get_text()) for row in cells.values() for cell in row)
    # The tiny ground truth's medium and long splits come from one long video: no interval to speak of.
    for split, row in cells.items():
        verdict = "one video only" if split in ("medium", "long") else "not distinguishable at 5%"
        assert all(verdict in cell.get_text() for cell in row), split


def test_it_refuses_submissions_scored_on_different_ground_truths(phase, pair, organizer):
    a, b = pair
    Analysis.objects.filter(submission=b).update(gt_version="f" * 64)
    with pytest.raises(ApplicationError, match="different ground-truth versions") as refused:
        comparisons.compare(phase=phase, submission_ids=[a.pk, b.pk], viewer=organizer)
    assert not isinstance(refused.value, NotFound)
    r = _client(organizer).get(f"/api/v1/phases/{phase.pk}/compare/?submissions={a.pk},{b.pk}")
    assert r.status_code == 400 and "cannot be paired" in r.json()["error"]


def test_the_board_by_trait_has_each_rows_bucket_means(phase, pair, organizer):
    a, b = pair
    traits = _traits(phase)
    for split in SPLITS:
        data = comparisons.board_by_trait(phase=phase, split=split, trait="presence", viewer=organizer)
        assert [r.submission_id for r in data.rows] == [a.pk, b.pk]  # board order
        bucketing = traits.buckets["presence"]
        members = defaultdict(list)
        for e in traits.expressions:
            if split == OVERALL or e.split == split:
                members[bucketing.bucket(e.presence)].append((e.split, e.video, e.exp_id))
        assert [(x.label, x.n) for x in data.buckets] == [(label, len(members[label])) for label in bucketing.labels
                                                          if members[label]]
        for row, submission in zip(data.rows, pair, strict=True):
            rows = _details(submission)
            for bucket, values in zip(data.buckets, row.values, strict=True):
                assert values["n"] == bucket.n
                for metric in METRICS:
                    hand = 100 * np.mean([float(rows[k][metric]) for k in members[bucket.label]])
                    assert values[metric] == pytest.approx(hand, abs=1e-9)


def test_a_row_without_an_analysis_is_listed_with_no_values(phase, pair, organizer):
    a, b = pair
    Analysis.objects.filter(submission=b).delete()
    data = comparisons.board_by_trait(phase=phase, split="overall", trait="area", viewer=organizer)
    assert [r.values is None for r in data.rows] == [False, True]
    with pytest.raises(ApplicationError, match="rescored"):
        comparisons.compare(phase=phase, submission_ids=[a.pk, b.pk], viewer=organizer)


# --- who sees what ----------------------------------------------------------------------------------------


def _shown(phase, viewer, split="overall", trait="presence"):
    data = comparisons.board_by_trait(phase=phase, split=split, trait=trait, viewer=viewer)
    return data, [b.n for b in data.buckets]


def test_small_buckets_are_shown_to_organizers_only_on_the_board(phase, pair, alice, carol, eve, organizer):
    phase.min_bucket_size = 4
    phase.save()
    everyone, _ = _shown(phase, organizer)
    counts = [b.n for b in everyone.buckets]
    assert any(n < 4 for n in counts) and any(n >= 4 for n in counts)  # the tiny ground truth has both
    for viewer in (None, eve, alice, carol):
        data, shown = _shown(phase, viewer)
        assert shown == [n for n in counts if n >= 4]
        assert data.hidden_buckets == len(counts) - len(shown) and "fewer than 4" in data.message
        assert all(len(r.values) == len(shown) for r in data.rows)
    # The same rule in the API (anonymous) and on the page.
    body = Client().get(f"/api/v1/phases/{phase.pk}/leaderboard/by-trait/?trait=presence").json()
    assert [b["n"] for b in body["buckets"]] == [n for n in counts if n >= 4] and body["hidden_buckets"] >= 1
    page = BeautifulSoup(Client().get(PAGE + "leaderboard/overall/by-trait/?trait=presence").content, "html.parser")
    assert [th.get_text(" ", strip=True) for th in page.select("table.by-trait thead th")][3:] == [
        f"{b.label} n = {b.n}" for b in everyone.buckets if b.n >= 4]


def test_a_private_board_by_trait_is_empty_until_the_reveal_but_for_organizers(phase, pair, alice, eve, organizer):
    phase.visibility, phase.reveal_at = "private", timezone.now() + dt.timedelta(days=3)
    phase.save()
    for viewer in (None, eve, alice):
        data, _ = _shown(phase, viewer)
        assert not data.visible and data.rows == [] and "private until" in data.message
    assert len(_shown(phase, organizer)[0].rows) == 2
    html = _client(alice).get(PAGE + "leaderboard/overall/by-trait/").content.decode()
    assert "private until" in html and "Good net" not in html and "by-trait-data" not in html


def test_while_the_ladder_runs_rows_have_no_values_by_trait_but_for_organizers(phase, pair, alice, organizer):
    phase.ladder, phase.ends_at = True, timezone.now() + dt.timedelta(days=3)
    phase.save()
    data, _ = _shown(phase, alice)
    assert [r.values for r in data.rows] == [None, None] and "Ladder" in data.message
    assert all(r.values is not None for r in _shown(phase, organizer)[0].rows)


def test_who_may_compare_what(phase, alice, bob, carol, eve, organizer, submit, score):
    a1 = score(submit(alice, "good", method_name="Good net"))
    a2 = score(submit(alice, "noisy", method_name="Kept off", is_public=False))
    c1 = score(submit(carol, "noisy", method_name="Noisy net"))
    phase.min_bucket_size = 4
    phase.save()

    def seen(viewer, ids):
        try:
            return comparisons.compare(phase=phase, submission_ids=ids, viewer=viewer)
        except NotFound:
            return None

    # A test phase (no details): the team compares its own, anyone the public ones; nothing per video, and only
    # the large buckets, but for organizers.
    for viewer in (alice, bob):
        own = seen(viewer, [a1.pk, a2.pk])
        assert own is not None and own.videos is None
        assert all(b.n >= 4 for t in own.traits for b in t.buckets)
        assert any(t.hidden_buckets for t in own.traits)
    for viewer in (None, eve, carol):
        assert seen(viewer, [a1.pk, a2.pk]) is None  # a2 is Team A's private one
        public = seen(viewer, [a1.pk, c1.pk])
        assert public is not None and public.videos is None and all(not t.hidden_buckets or
                                                                    all(b.n >= 4 for b in t.buckets)
                                                                    for t in public.traits)
    full = seen(organizer, [a1.pk, a2.pk])
    assert full.videos is not None and not any(t.hidden_buckets for t in full.traits)

    # A development phase (details for the team): its own submissions per video and every bucket; another
    # team's submission still nothing per video.
    phase.show_expression_details = True
    phase.save()
    own = seen(alice, [a1.pk, a2.pk])
    assert own.videos is not None and not any(t.hidden_buckets for t in own.traits)
    mixed = seen(carol, [c1.pk, a1.pk])
    assert mixed.videos is None and any(t.hidden_buckets for t in mixed.traits)
    assert seen(eve, [a1.pk, c1.pk]).videos is None

    # A private board before its reveal: the teams still compare their own; the public, nothing.
    phase.visibility, phase.reveal_at = "private", timezone.now() + dt.timedelta(days=3)
    phase.save()
    assert seen(eve, [a1.pk, c1.pk]) is None and seen(None, [a1.pk, c1.pk]) is None
    assert seen(alice, [a1.pk, a2.pk]) is not None and seen(organizer, [a1.pk, c1.pk]) is not None
    assert seen(alice, [a1.pk, c1.pk]) is None

    # The Ladder: no exact scores, so no comparison, but for organizers.
    phase.visibility, phase.ladder, phase.ends_at = "public", True, timezone.now() + dt.timedelta(days=3)
    phase.save()
    assert seen(alice, [a1.pk, a2.pk]) is None and seen(organizer, [a1.pk, a2.pk]) is not None


def test_a_submission_one_may_not_see_is_answered_as_a_missing_one(phase, alice, carol, submit, score):
    a1 = score(submit(alice, "good"))
    a2 = score(submit(alice, "noisy", is_public=False))
    for viewer in (None, carol):
        client = _client(viewer)
        for url in (PAGE + "compare/?submissions={}", f"/api/v1/phases/{phase.pk}/compare/?submissions={{}}"):
            hidden = client.get(url.format(f"{a1.pk},{a2.pk}"))
            missing = client.get(url.format(f"{a1.pk},999999"))
            assert hidden.status_code == missing.status_code == 404
            # The ids asked for are blanked out (the anonymous page's login link repeats them), and the forms' tokens.
            blank = [as_missing(r.content.decode().replace("999999", "<ID>").replace(str(a2.pk), "<ID>"))
                     for r in (hidden, missing)]
            assert blank[0] == blank[1]


def test_a_submission_of_another_phase_is_not_compared(phase, challenge, ground_truth, alice, submit, score):
    from leaderboard.challenges.services import phase_create

    other = phase_create(challenge=challenge, slug="other", name="Other", ground_truth=ground_truth)
    a = score(submit(alice, "good"))
    b = score(submit(alice, "noisy", phase=other))
    with pytest.raises(NotFound):
        comparisons.compare(phase=phase, submission_ids=[a.pk, b.pk], viewer=alice)


# --- the API and the pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "sentence"), [
    ("", "Name the submissions to compare"),
    ("?submissions=", "Name the submissions to compare"),
    ("?submissions=1", "Compare two to 8 submissions; 1 given"),
    ("?submissions=1,2,3,4,5,6,7,8,9", "Compare two to 8 submissions; 9 given"),
    ("?submissions=1,1", "Each submission may be named once"),
    ("?submissions=1,x", "'x' is not a submission id"),
])
def test_the_api_says_what_is_wrong_with_a_comparison(phase, query, sentence):
    r = Client().get(f"/api/v1/phases/{phase.pk}/compare/{query}")
    assert r.status_code == 400 and sentence in r.json()["error"]


@pytest.mark.parametrize(("query", "sentence"), [
    ("?trait=colour", "there is no trait 'colour'; choose one of presence, trajectories"),
    ("?split=huge", "there is no board 'huge'"),
    ("?metric=F1", "there is no metric 'F1'"),
])
def test_the_api_says_what_is_wrong_with_a_board_by_trait(phase, query, sentence):
    r = Client().get(f"/api/v1/phases/{phase.pk}/leaderboard/by-trait/{query}")
    assert r.status_code == 400 and sentence in r.json()["error"]


def test_a_board_by_trait_of_a_split_the_phase_has_not_is_refused(phase, pair):
    from leaderboard.challenges.models import PhaseSplit

    PhaseSplit.objects.filter(phase=phase, code="long").delete()
    r = Client().get(f"/api/v1/phases/{phase.pk}/leaderboard/by-trait/?split=long")
    assert r.status_code == 400 and "no long leaderboard" in r.json()["error"]
    assert Client().get(PAGE + "leaderboard/long/by-trait/").status_code == 404
    assert Client().get(PAGE + "leaderboard/overall/by-trait/?trait=colour").status_code == 400


def test_the_shared_address_shows_the_same_comparison_to_anyone_allowed(phase, pair, alice, carol, eve):
    a, b = pair
    url = PAGE + f"compare/?submissions={a.pk},{b.pk}"
    # The board's form sends the ids one by one: they go on to the one address.
    sent = Client().get(PAGE + f"compare/?submissions={a.pk}&submissions={b.pk}")
    assert sent.status_code == 302 and sent["Location"] == url
    pages = {}
    for name, viewer in (("anonymous", None), ("eve", eve), ("alice", alice), ("carol", carol)):
        soup = BeautifulSoup(_client(viewer).get(url).content, "html.parser")
        pages[name] = ([str(s) for s in soup.select(".split-comparison, .trait-comparison, .video-comparison")],
                       json.loads(soup.find(id="comparison-data").string))
    first = pages["anonymous"]
    assert len(first[0]) == len(SPLITS) + 2
    assert all(page == first for page in pages.values())
    # The page's charts are drawn from what the API serves.
    api = Client().get(f"/api/v1/phases/{phase.pk}/compare/?submissions={a.pk},{b.pk}").json()
    assert api == first[1]


def test_the_board_has_a_box_per_submission_row_and_a_by_trait_link(phase, pair, organizer, submit, score, client):
    from leaderboard.baselines.models import ReportedResult

    ReportedResult.objects.create(phase=phase, method="Paper", source_url="https://example.org/p",
                                  values={"overall": {"IoU_gold_pred": 12.5}})
    soup = BeautifulSoup(client.get(PAGE + "leaderboard/overall/").content, "html.parser")
    boxes = soup.select('input[type="checkbox"][name="submissions"][form="compare-form"]')
    assert sorted(int(box["value"]) for box in boxes) == sorted(s.pk for s in pair)
    form = soup.find("form", id="compare-form")
    assert form["method"] == "get" and form["action"] == PAGE + "compare/"
    assert soup.find("a", string="By trait")["href"] == PAGE + "leaderboard/overall/by-trait/"
    phase.min_bucket_size = 1
    phase.save()
    by_trait = BeautifulSoup(client.get(PAGE + "leaderboard/overall/by-trait/").content, "html.parser")
    assert by_trait.find(id="by-trait-chart") is not None and by_trait.find(id="by-trait-data") is not None
