"""Serving a board reads the materialized rows, never the scores: the JSON, the CSV, the page and the evalai
board make no query on the Score table (or the submissions) and a bounded number of queries however many
rows the board has; conditional GETs (ETag) answer 304 without reading the rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leaderboard.challenges.models import Phase
from leaderboard.submissions import services
from scoring import METRICS

from .apiclient import client_for

PAGE = "/challenges/egomask/phases/test/leaderboard/overall/"


@pytest.fixture
def board(alice, carol, organizer, phase, submit, score):
    """Team A (perfect) above Team C (noisy), and an organizer's baseline (good) between them, unranked."""
    return {
        "alice": score(submit(alice, "perfect", method_name="Perfect")),
        "carol": score(submit(carol, "noisy", method_name="Noisy")),
        "baseline": score(submit(organizer, "good", method_name="Baseline", is_baseline=True)),
    }


def _urls(phase) -> list[str]:
    split = phase.splits.get(code="overall")
    return [f"/api/v1/phases/{phase.pk}/leaderboard/", f"/api/v1/phases/{phase.pk}/leaderboard/?metric=T_recall",
            f"/api/v1/phases/{phase.pk}/leaderboard.csv", PAGE, PAGE + "?metric=IoU_all",
            f"/api/jobs/challenge_phase_split/{split.pk}/leaderboard/"]


def _tables(queries: list[dict]) -> str:
    return "\n".join(q["sql"] for q in queries)


def test_it_serves_every_board_without_reading_the_scores(phase, board):
    for url in _urls(phase):
        with CaptureQueriesContext(connection) as queries:
            response = client_for().get(url)
        assert response.status_code == 200, (url, response.content[:300])
        sql = _tables(queries.captured_queries)
        assert "submissions_score" not in sql, (url, sql)
        assert '"submissions_submission"' not in sql, (url, sql)
        assert b"Perfect" in response.content, url


def test_it_serves_a_board_in_a_few_queries_however_many_rows_it_has(phase, board, teams_with_scores):
    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client_for().get(url).status_code == 200
        return len(queries)

    url = f"/api/v1/phases/{phase.pk}/leaderboard/?metric=IoU_all"
    small = count(url)
    teams_with_scores(60)
    assert count(url) == small == 3  # the phase with its board's version, its list of boards, the rows
    assert count(url) == 2  # cached now: no rows read


@pytest.fixture
def teams_with_scores(phase, challenge):
    """Factory: n more teams with one finished submission each (written directly), then the boards rebuilt."""
    from leaderboard.accounts.models import Team
    from leaderboard.submissions.boards import board_changed
    from leaderboard.submissions.models import Score, Submission

    def make(n: int) -> None:
        for i in range(n):
            team = Team.objects.create(challenge=challenge, name=f"Extra {i}")
            submission = Submission.objects.create(phase=phase, team=team, file_sha256="0" * 64,
                                                   method_name=f"extra {i}", status=Submission.Status.FINISHED)
            for split in ("short", "medium", "long", "overall"):
                Score.objects.create(submission=submission, split=split, T_recall=i, IoU_all=i, IoU_gold=i,
                                     IoU_gold_pred=i, n_expressions=3, scorer_version="1", gt_version="gt")
        board_changed(phase_id=phase.pk)

    return make


@pytest.mark.parametrize("path", ["leaderboard/", "leaderboard.csv"])
def test_it_answers_304_to_a_client_that_has_the_board(phase, board, alice, path):
    url = f"/api/v1/phases/{phase.pk}/{path}"
    first = client_for().get(url)
    etag = first["ETag"]
    assert first.status_code == 200 and etag.startswith(f'"{phase.pk}.') and first["Cache-Control"] == "no-cache"
    assert "Authorization" in first["Vary"] and "Cookie" in first["Vary"]
    with CaptureQueriesContext(connection) as queries:
        again = client_for().get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert "submissions_boardrow" not in _tables(queries.captured_queries)
    # Another board, sort or format is another rendering, with its own ETag.
    assert client_for().get(url + "?split=short", HTTP_IF_NONE_MATCH=etag).status_code == 200
    assert client_for().get(url + "?metric=T_recall")["ETag"] != etag

    # The board changes: the old ETag gets the new board.
    services.submission_set_public(submission=board["alice"], user=alice, is_public=False)
    changed = client_for().get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert b"Perfect" not in changed.content and b"Noisy" in changed.content


def test_it_serves_a_changed_board_at_once_from_the_cache(phase, board, carol):
    url = f"/api/v1/phases/{phase.pk}/leaderboard/"
    assert [row["method"] for row in client_for().get(url).json()["rows"]] == ["Perfect", "Baseline", "Noisy"]
    services.submission_update_method(submission=board["carol"], user=carol, method_name="Noisy, renamed")
    assert [row["method"] for row in client_for().get(url).json()["rows"]] == ["Perfect", "Baseline",
                                                                               "Noisy, renamed"]
    html = client_for().get(PAGE).content.decode()
    assert "Noisy, renamed" in html


def test_it_shows_organizers_a_private_board_early_and_nobody_else(phase, board, organizer, alice, eve):
    Phase.objects.filter(pk=phase.pk).update(visibility=Phase.Visibility.PRIVATE,
                                             reveal_at=timezone.now() + dt.timedelta(days=1))
    url = f"/api/v1/phases/{phase.pk}/leaderboard/"
    early = client_for(organizer).get(url)
    assert len(early.json()["rows"]) == 3 and "private" in early["Cache-Control"]
    assert client_for(organizer).get(f"/api/v1/phases/{phase.pk}/leaderboard.csv").status_code == 200
    web = Client()
    web.force_login(organizer)
    assert "Perfect" in web.get(PAGE).content.decode()
    # What the organizer was served (and is now cached) is not what anyone else gets.
    for viewer in (None, alice, eve):
        body = client_for(viewer).get(url).json()
        assert (body["visible"], body["rows"]) == (False, []) and "private until" in body["message"]
        assert client_for(viewer).get(url, HTTP_IF_NONE_MATCH=early["ETag"]).status_code == 200
        assert client_for(viewer).get(f"/api/v1/phases/{phase.pk}/leaderboard.csv").status_code == 403
    page = Client().get(PAGE).content.decode()
    assert "Perfect" not in page and "This leaderboard is private until" in page

    # The reveal time passing is no change to the rows: the board is served to everyone from then on.
    Phase.objects.filter(pk=phase.pk).update(reveal_at=timezone.now() - dt.timedelta(seconds=1))
    assert len(client_for().get(url).json()["rows"]) == 3
    assert "Perfect" in Client().get(PAGE).content.decode()


def test_it_caches_the_pages_rows_once_and_marks_each_teams_own(phase, board, alice, carol):
    def mine(html: str) -> str:
        (row,) = re.findall(r'<tr class="mine"[^>]*>.*?</tr>', html, re.S)
        return row

    assert "your team" not in Client().get(PAGE).content.decode()  # rendered (and cached) for an outsider
    web = Client()
    web.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        html = web.get(PAGE).content.decode()
    assert "submissions_boardrow" not in _tables(queries.captured_queries)  # the rows came from the cache
    assert "Team A" in mine(html) and html.count('<span class="badge">your team</span>') == 1
    web.force_login(carol)
    assert "Team C" in mine(web.get(PAGE).content.decode()) and "Team A" not in mine(web.get(PAGE).content.decode())


def test_it_serves_what_the_ranking_rules_give_on_a_busy_board(phase, challenge):
    """Many teams, ties within 1e-6, missing values, baselines, private/hidden/failed entries, reported
    rows: the stored board equals the live computation for every board, sort and variant."""
    from leaderboard.accounts.models import Team
    from leaderboard.baselines.models import ReportedResult
    from leaderboard.submissions.boards import board_changed
    from leaderboard.submissions.models import Score, Submission
    from leaderboard.submissions.selectors import board_get, leaderboard_rows

    rng = random.Random(7)
    teams = [Team.objects.create(challenge=challenge, name=f"T{i}") for i in range(25)]
    start = timezone.now() - dt.timedelta(days=3)
    for i in range(150):
        team = rng.choice([*teams, None])
        status = rng.choice([Submission.Status.FINISHED] * 6 + [Submission.Status.FAILED, Submission.Status.SCORING])
        submission = Submission.objects.create(
            phase=phase, team=team, file_sha256="0" * 64, method_name=f"m{i}", status=status,
            is_baseline=team is None, is_public=rng.random() > 0.1, hidden=rng.random() < 0.05,
            submitted_at=start + dt.timedelta(minutes=i))
        base = rng.choice([50.0, 50.0 + 4e-7, 50.0 - 8e-7, 60.0, float("nan")]) if rng.random() < 0.3 \
            else rng.uniform(0, 100)
        for split in ("short", "medium", "long", "overall"):
            if status == Submission.Status.FAILED and rng.random() < 0.5:
                continue
            Score.objects.create(submission=submission, split=split, T_recall=rng.uniform(0, 100), IoU_all=base,
                                 IoU_gold=rng.choice([base, 70.0]), IoU_gold_pred=base + rng.choice([0, 0, 1e-7]),
                                 n_expressions=5, scorer_version="1", gt_version="gt")
    ReportedResult.objects.create(phase=phase, method="Paper A", source_url="https://example.org/a",
                                  values={"short": {"IoU_gold_pred": 50.0000002}, "overall": {"T_recall": 60.0}})
    nothing = Submission.objects.create(phase=phase, team=Team.objects.create(challenge=challenge, name="NaN team"),
                                        file_sha256="0" * 64, method_name="no value", status=Submission.Status.FINISHED)
    for split in ("short", "medium", "long", "overall"):  # a row with no value: last, without a rank
        Score.objects.create(submission=nothing, split=split, T_recall=float("nan"), IoU_all=float("nan"),
                             IoU_gold=float("nan"), IoU_gold_pred=float("nan"), n_expressions=5, scorer_version="1",
                             gt_version="gt")
    board_changed(phase_id=phase.pk)

    def comparable(rows) -> list:  # NaN != NaN: compare what a row shows
        return [dataclasses.replace(row, scores={m: "nan" if isinstance(v, float) and math.isnan(v) else v
                                                 for m, v in row.scores.items()}) for row in rows]

    for split in ("short", "medium", "long", "overall"):
        for metric in METRICS:
            for include_reported in (True, False):
                live = leaderboard_rows(phase=phase, split=split, metric=metric, include_reported=include_reported)
                served = board_get(phase=phase, split=split, metric=metric, include_reported=include_reported)
                assert comparable(served.rows) == comparable(live.rows), (split, metric, include_reported)
                assert len(live.rows) > 10 and [r.rank for r in live.rows if r.team == "NaN team"] == [None]


def test_it_keeps_one_rendering_per_board_in_the_cache(phase, board, alice):
    """A slot holds the latest version's rendering: a busy phase's versions do not pile up in Redis."""
    from django.core.cache import cache

    from leaderboard.submissions.board_cache import board_view

    def current():
        return board_view(phase=Phase.objects.get(pk=phase.pk), split="overall", metric=None, viewer=None,
                          variant="json")

    url = f"/api/v1/phases/{phase.pk}/leaderboard/"
    client_for().get(url)
    before = current()
    assert cache.get(before.slot)[0] == before.source
    services.submission_set_public(submission=board["alice"], user=alice, is_public=False)
    client_for().get(url)
    after = current()
    assert after.slot == before.slot and after.source != before.source
    source, body = cache.get(after.slot)
    assert source == after.source and b"Perfect" not in body
