"""The organizer dashboard: submissions per day (an SVG chart, one bar per day), failures grouped by reason,
stuck and slow submissions, teams with their quota use; a bounded number of queries; organizers only."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leaderboard.accounts.services import team_create
from leaderboard.challenges.models import Challenge, Host, Phase
from leaderboard.challenges.services import phase_create
from leaderboard.lib.svgchart import Series, nice_step, stacked_bars
from leaderboard.submissions.dashboard import challenge_dashboard, failure_pattern, percentile_95
from leaderboard.submissions.models import FailureKind, Submission
from leaderboard.submissions.selectors import quota_for

from .conftest import make_user

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)
S = Submission.Status


@pytest.fixture
def host(challenge):
    user = make_user("hector")
    Host.objects.create(challenge=challenge, user=user, role=Host.Role.VIEWER)
    return user


@pytest.fixture
def row(phase):
    """Factory: a submission row as the services would have left it (no file needed: the dashboard reads rows)."""
    made = iter(range(1, 10_000))

    def make(user, *, at: dt.datetime = NOW, status: str = S.FINISHED, **fields):  # type: ignore[no-untyped-def]
        team = fields.pop("team", None) or (user.memberships.get().team if user.memberships.exists() else None)
        return Submission.objects.create(
            phase=fields.pop("phase", phase), team=team, user=user, file="submissions/x.zip",
            file_sha256=f"{next(made):064x}", method_name=fields.pop("method_name", "M"), status=status,
            submitted_at=at, **fields)

    return make


def _without_csrf(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def _page(user, slug: str = "egomask"):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client.get(f"/challenges/{slug}/organize/")


def test_it_counts_submissions_per_day_as_by_hand(phase, alice, carol, row):
    day = dt.timedelta(days=1)
    row(alice, at=NOW - 2 * day)
    row(alice, at=NOW - 2 * day, status=S.FAILED)
    row(carol, at=NOW - 2 * day, status=S.FAILED)
    row(carol, at=NOW - day, status=S.SUBMITTED)
    row(alice, at=NOW)
    row(alice, at=NOW - 40 * day)  # before the window: counted in the totals, not drawn
    board = challenge_dashboard(challenge=phase.challenge, now=NOW)
    overall = board.overall
    assert len(overall.days) == 30 and overall.days[-1] == NOW.date()
    assert overall.finished[-3:] == [1, 0, 1] and overall.failed[-3:] == [2, 0, 0] and overall.other[-3:] == [0, 1, 0]
    assert sum(overall.finished) == 2 and overall.total == 6
    assert overall.statuses == {"finished": 3, "failed": 2, "submitted": 1}
    (section,) = board.phases
    assert section.finished == overall.finished and section.statuses == overall.statuses


def test_it_draws_a_phase_over_its_span_in_the_challenges_time_zone(challenge, phase, alice, row):
    Challenge.objects.filter(pk=challenge.pk).update(time_zone="Etc/GMT-10")  # UTC+10
    challenge.refresh_from_db()
    Phase.objects.filter(pk=phase.pk).update(starts_at=NOW - dt.timedelta(days=6), ends_at=NOW - dt.timedelta(days=2))
    late_evening = dt.datetime(2026, 11, 16, 20, 0, tzinfo=dt.UTC)  # the 17th at 06:00 in UTC+10
    row(alice, at=late_evening)
    board = challenge_dashboard(challenge=challenge, now=NOW)
    (section,) = board.phases
    assert section.days[0] == dt.date(2026, 11, 15) and section.days[-1] == dt.date(2026, 11, 19)
    assert dict(zip(section.days, section.finished, strict=True))[dt.date(2026, 11, 17)] == 1
    assert board.time_zone == "Etc/GMT-10"


def test_it_serves_the_chart_as_svg_with_one_bar_per_day(phase, alice, host, row):
    row(alice, at=timezone.now())
    row(alice, at=timezone.now(), status=S.FAILED, failure_kind=FailureKind.INVALID, failure_message="Bad 1")
    response = _page(host)
    assert response.status_code == 200
    html = response.content.decode()
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(charts) == 2  # the whole challenge and its one phase
    for chart in charts:
        root = ET.fromstring(chart)  # well-formed
        days = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "day"]
        assert len(days) == 30
        last = days[-1]
        assert [r.get("class") for r in last.iter("{http://www.w3.org/2000/svg}rect")] == ["finished", "failed"]
        assert "1 finished, 1 failed, 0 active or cancelled" in last.find("{http://www.w3.org/2000/svg}title").text
    assert "<script" not in html.split("<main", 1)[1]  # no charting library: the page's own SVG


def test_it_makes_readable_axes_and_escapes_the_labels():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(3)]
    svg = stacked_bars(days=days, series=[Series("<b>ok</b>", "#000", (3, 0, 17))], title="A & B")
    root = ET.fromstring(svg)
    labels = [t.text for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "axis y"
              for t in g.iter("{http://www.w3.org/2000/svg}text")]
    assert labels == ["0", "5", "10", "15", "20"]
    assert "&lt;b&gt;ok&lt;/b&gt;" in svg and "A &amp; B" in svg
    assert (nice_step(0), nice_step(4), nice_step(17), nice_step(240)) == (1, 1, 5, 50)
    with pytest.raises(ValueError):
        stacked_bars(days=days, series=[Series("x", "#000", (1,))], title="t")


def test_it_groups_failures_whose_messages_differ_only_in_numbers_and_names(phase, alice, carol, row):
    first = row(alice, at=NOW - dt.timedelta(hours=3), status=S.FAILED, failure_kind=FailureKind.INVALID,
                failure_message="Frame 12 of video 'v3' is missing (and 2 more problems).")
    latest = row(carol, at=NOW - dt.timedelta(hours=1), status=S.FAILED, failure_kind=FailureKind.INVALID,
                 failure_message="Frame 7 of video 'clip_9' is missing (and 40 more problems).")
    crashed = row(alice, at=NOW, status=S.FAILED, failure_kind=FailureKind.CRASHED,
                  failure_message="Frame 7 of video 'clip_9' is missing (and 40 more problems).")
    row(alice, status=S.FAILED, failure_kind=FailureKind.INTERNAL, failure_message="The ground truth is unavailable.")
    groups = challenge_dashboard(challenge=phase.challenge, now=NOW).overall.failures
    assert [(g.kind, g.count) for g in groups] == [("invalid", 2), ("crashed", 1), ("internal", 1)]
    invalid = groups[0]
    assert invalid.pattern == "Frame N of video '…' is missing (and N more problems)."
    assert invalid.latest_id == latest.pk and invalid.latest_id != first.pk and groups[1].latest_id == crashed.pk
    assert failure_pattern("") == "(no message)"
    assert failure_pattern('File "a/b 3.png" at 0.25 s') == "File '…' at N s"


def test_it_merges_a_reason_across_phases_and_counts_it_per_phase(challenge, phase, alice, row, ground_truth):
    second = phase_create(challenge=challenge, slug="final", name="Final", ground_truth=ground_truth)
    for target, message in ((phase, "Bad frame 1"), (phase, "Bad frame 2"), (second, "Bad frame 3")):
        row(alice, phase=target, status=S.FAILED, failure_kind=FailureKind.INVALID, failure_message=message)
    board = challenge_dashboard(challenge=challenge, now=NOW)
    assert [(g.pattern, g.count) for g in board.overall.failures] == [("Bad frame N", 3)]
    assert [[g.count for g in s.failures] for s in board.phases] == [[2], [1]]


def test_it_finds_stuck_submissions(phase, alice, carol, row, settings):
    settings.DASHBOARD_STUCK_FACTOR, settings.DASHBOARD_STUCK_WAIT_SECONDS = 10, 60
    minute = dt.timedelta(minutes=1)
    for _ in range(5):  # recent scored ones waited 30 s each: the median wait
        row(carol, at=NOW - 60 * minute, started_at=NOW - 60 * minute + dt.timedelta(seconds=30))
    lost = row(alice, at=NOW - 10 * minute, status=S.SCORING, started_at=NOW - 9 * minute,
               lease_expires_at=NOW - 2 * minute)
    leased = row(alice, at=NOW - 10 * minute, status=S.SCORING, started_at=NOW - 9 * minute,
                 lease_expires_at=NOW + minute)
    waiting = row(alice, at=NOW - 6 * minute, status=S.SUBMITTED, unsent=True)  # 360 s > 10 × 30 s
    fresh = row(alice, at=NOW - 4 * minute, status=S.SUBMITTED)  # 240 s < 300 s
    requeued = row(alice, at=NOW - 60 * minute, status=S.SUBMITTED, queued_at=NOW - 2 * minute)
    # A long validation whose worker renews its lease is working, not stuck.
    validating = row(alice, at=NOW - 60 * minute, status=S.VALIDATING, started_at=NOW - 59 * minute,
                     lease_expires_at=NOW + minute)
    settings.SCORING_STUCK_AFTER = 1800
    unleased = row(alice, at=NOW - 60 * minute, status=S.SCORING, started_at=NOW - 40 * minute)
    board = challenge_dashboard(challenge=phase.challenge, now=NOW)
    assert board.median_wait_seconds == 30
    stuck = {f.submission_id: f.reason for f in board.overall.stuck}
    assert set(stuck) == {lost.pk, waiting.pk, unleased.pk}, stuck
    assert {leased.pk, fresh.pk, requeued.pk, validating.pk}.isdisjoint(stuck)
    assert stuck[lost.pk] == "its worker's lease ran out 2 min ago"
    assert stuck[waiting.pk] == "waiting for 6 min (median wait 30 s), its task was not sent"
    assert stuck[unleased.pk] == "claimed 40 min ago without a lease"
    assert board.overall.stuck_count == 3 and board.phases[0].stuck_count == 3


def test_it_finds_slow_submissions_above_the_phases_95th_percentile_or_the_setting(phase, alice, row, settings):
    settings.DASHBOARD_SLOW_SECONDS = 0
    made = [row(alice, scoring_seconds=float(seconds)) for seconds in range(1, 21)]  # 1 … 20 s: p95 is 19 s
    board = challenge_dashboard(challenge=phase.challenge, now=NOW)
    assert percentile_95([float(s) for s in range(1, 21)]) == 19.0 and board.phases[0].p95_seconds == 19.0
    assert [f.submission_id for f in board.phases[0].slow] == [made[-1].pk]
    settings.DASHBOARD_SLOW_SECONDS = 17
    slow = challenge_dashboard(challenge=phase.challenge, now=NOW).overall.slow
    assert [f.submission_id for f in slow] == [made[-1].pk, made[-2].pk, made[-3].pk]
    assert slow[1].reason == "scored in 19 s, above 17 s"


def test_it_lists_teams_with_their_members_and_the_quota_quota_for_gives(phase, alice, bob, carol, row, ground_truth):
    second = phase_create(challenge=phase.challenge, slug="final", name="Final", ground_truth=ground_truth,
                          max_per_day=2, max_total=3)
    Phase.objects.filter(pk=phase.pk).update(max_per_day=5)
    phase.refresh_from_db()
    now = timezone.now()
    row(alice, at=now)
    row(bob, at=now - dt.timedelta(days=2))
    row(alice, at=now, status=S.FAILED, failure_kind=FailureKind.INVALID)  # uses no quota
    row(alice, at=now, status=S.FAILED, failure_kind=FailureKind.CRASHED)  # does
    row(carol, phase=second, at=now)
    row(carol, phase=second, at=now, status=S.SCORING)
    board = challenge_dashboard(challenge=phase.challenge, now=now)
    teams = {t.name: t for t in board.teams}
    assert teams["Team A"].members == ("alice", "bob") and teams["Team C"].members == ("carol",)
    assert (teams["Team A"].submissions, teams["Team C"].submissions) == (4, 2)
    for team in teams.values():
        for target, use in team.quotas:
            expected = quota_for(phase=target, team_id=team.team_id, now=now)
            assert (use.per_day_left, use.total_left) == (expected.per_day_left, expected.total_left)
    used = dict((p.slug, q) for p, q in teams["Team C"].quotas)
    assert (used["final"].today, used["final"].total, used["final"].per_day_left, used["final"].used_up) == (
        2, 2, 0, True)


def test_it_reads_the_dashboard_in_a_bounded_number_of_queries(challenge, phase, alice, carol, host, row,
                                                               ground_truth):
    phase_create(challenge=challenge, slug="final", name="Final", ground_truth=ground_truth)
    row(alice, scoring_seconds=3.0)
    row(carol, status=S.FAILED, failure_kind=FailureKind.INVALID, failure_message="x 1")

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as direct:
            challenge_dashboard(challenge=challenge)
        with CaptureQueriesContext(connection) as page:
            assert _page(host).status_code == 200
        return len(direct), len(page)

    before = count()
    for i in range(12):  # more teams, members, submissions of every kind
        user = make_user(f"user{i}")
        team = team_create(challenge=challenge, user=user, name=f"Team {i}")
        row(user, team=team, scoring_seconds=float(i))
        row(user, team=team, status=S.FAILED, failure_kind=FailureKind.INVALID, failure_message=f"x {i}")
        row(user, team=team, status=S.SUBMITTED, at=timezone.now() - dt.timedelta(hours=3))
        row(user, team=team, status=S.SCORING, lease_expires_at=timezone.now() - dt.timedelta(minutes=5))
    after = count()
    assert after == before, (before, after)
    assert after[0] <= 12


def test_it_answers_404_to_participants_and_other_hosts_and_links_for_organizers(challenge, phase, alice, host):
    olga = make_user("olga")
    draft = Challenge.objects.create(slug="draft", title="Draft", is_published=False)
    Host.objects.create(challenge=draft, user=olga, role=Host.Role.OWNER)
    for user in (alice, olga):
        response = _page(user)
        assert response.status_code == 404 and _without_csrf(response) == _without_csrf(_page(user, "nope"))
    assert _page(olga, "draft").status_code == 200 and _page(host, "draft").status_code == 404
    assert Client().get("/challenges/egomask/organize/").status_code == 302  # to the login page

    def challenge_page(user):  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return client.get("/challenges/egomask/").content.decode()

    assert "/challenges/egomask/organize/" in challenge_page(host)
    assert "/challenges/egomask/organize/" not in challenge_page(alice)
    html = _page(host).content.decode()
    for name in ("submissions.csv", "submissions.json", "boards.csv", "boards.json", "results.zip"):
        assert f"/api/v1/phases/{phase.pk}/export/{name}" in html
    assert "/challenges/egomask/status/" in html and f"/admin/challenges/challenge/{challenge.pk}/change/" in html
