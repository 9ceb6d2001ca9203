"""The Ladder on a running phase: the boards show each team's Ladder score (primary metric only, nothing
computed from exact numbers), baselines exactly; no interface gives a non-organizer a submission's exact
scores; and when the phase ends the boards are rebuilt with the exact numbers."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from leaderboard.challenges.models import Phase
from leaderboard.submissions import boards
from leaderboard.submissions.models import Board, BoardRow, Score, ScoreHistory, Submission
from leaderboard.submissions.selectors import board_get
from scoring import METRICS

from .apiclient import client_for
from .mailkit import mail_tasks_run

SPLITS = ("short", "medium", "long", "overall")
START = timezone.now() - dt.timedelta(days=3)


def _values(primary: float) -> dict[str, float]:
    """Four metrics with distinctive digits, the primary (IoU_gold_pred) as given."""
    return {"T_recall": primary + 7.1234, "IoU_all": primary - 3.4321, "IoU_gold": primary - 1.2468,
            "IoU_gold_pred": primary}


@pytest.fixture
def laddered(phase) -> Phase:
    Phase.objects.filter(pk=phase.pk).update(ladder=True, ladder_step=1.0,
                                             ends_at=timezone.now() + dt.timedelta(days=7))
    boards.board_refresh(phase_id=phase.pk)
    return Phase.objects.get(pk=phase.pk)


@pytest.fixture
def finished(submit):
    """Factory: a finished submission of `user`'s team with these primary scores (the same on every split),
    made `minutes` after START; the boards are rebuilt, as a real end does."""

    def make(user, primary: float, minutes: int, **fields) -> Submission:
        submission = submit(user, method_name=f"m{minutes}", **fields)
        Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.FINISHED,
                                                           submitted_at=START + dt.timedelta(minutes=minutes))
        for split in SPLITS:
            Score.objects.create(submission=submission, split=split, n_expressions=3, scorer_version="t",
                                 gt_version="t", ci={m: [0.0, 100.0] for m in METRICS}, **_values(primary))
            ScoreHistory.objects.create(submission=submission, attempt=1, split=split, n_expressions=3,
                                        scorer_version="t", gt_version="t", **_values(primary))
        boards.board_refresh(phase_id=submission.phase_id)
        return Submission.objects.get(pk=submission.pk)

    return make


@pytest.fixture
def ladder_board(laddered, alice, carol, organizer, finished):
    """Team A: 60.4, 61.0, 61.2 (Ladder: 60, 60, 61); Team C: 61.3 (Ladder 61); a baseline at 62.3456."""
    a = [finished(alice, 60.4, 1), finished(alice, 61.0, 2), finished(alice, 61.2, 3)]
    c = finished(carol, 61.3, 4)
    baseline = finished(organizer, 62.3456, 5, is_baseline=True)
    return {"a": a, "c": c, "baseline": baseline}


def rows(phase: Phase, split: str = "overall") -> list[tuple]:
    return [(r.rank, r.team, r.submission_id, r.scores["IoU_gold_pred"], r.scores["T_recall"])
            for r in board_get(phase=phase, split=split).rows]


def test_the_board_shows_each_teams_ladder_score_and_baselines_exactly(laddered, ladder_board):
    a, c, baseline = ladder_board["a"], ladder_board["c"], ladder_board["baseline"]
    for split in SPLITS:
        # A's 61.2 moved its Ladder to 61 (more than 1 above 60); C's 61.3 shows 61: a tie, the earlier first.
        assert rows(laddered, split) == [(None, None, baseline.pk, 62.3456, 62.3456 + 7.1234),
                                         (1, "Team A", a[2].pk, 61.0, None), (1, "Team C", c.pk, 61.0, None)]
    stored = BoardRow.objects.filter(phase=laddered, is_baseline=False)
    assert {(r.IoU_all, r.IoU_gold, r.T_recall, r.ci, r.tie_group) for r in stored} == {(None, None, None, None, None)}


def test_a_submission_that_does_not_beat_the_ladder_by_a_step_changes_nothing(laddered, ladder_board, alice, finished):
    before = Board.objects.get(phase=laddered).version
    finished(alice, 61.9, 10)  # 0.9 above the shown 61, though 0.7 above the exact best
    assert Board.objects.get(phase=laddered).version == before
    finished(alice, 62.6, 11)  # 1.6 above 61: shown [62.6] = 63
    assert rows(laddered)[0][1:4] == ("Team A", Submission.objects.latest("submitted_at").pk, 63.0)


def test_the_api_board_says_so_and_carries_no_exact_number(laddered, ladder_board):
    response = client_for().get(f"/api/v1/phases/{laddered.pk}/leaderboard/")
    body = response.json()
    assert body["ladder"].startswith("This phase uses the Ladder: exact scores are revealed when the phase ends on ")
    team_rows = [row for row in body["rows"] if not row["is_baseline"]]
    assert [row["scores"] for row in team_rows] == [{"T_recall": None, "IoU_all": None, "IoU_gold": None,
                                                     "IoU_gold_pred": 61.0}] * 2
    text = response.content.decode()
    for exact in ("60.4", "61.2", "61.3", "68.3234", "57.7679"):
        assert exact not in text
    page = Client().get(f"/challenges/egomask/phases/{laddered.slug}/leaderboard/overall/").content.decode()
    assert "This phase uses the Ladder" in page and "61.20" not in page and "61.30" not in page
    assert "62.35" in page  # the baseline, exactly


def test_the_end_of_the_phase_rebuilds_the_board_with_exact_numbers(laddered, ladder_board):
    a, c = ladder_board["a"], ladder_board["c"]
    before = Board.objects.get(phase=laddered)
    ended = timezone.now() - dt.timedelta(minutes=1)
    Phase.objects.filter(pk=laddered.pk).update(ends_at=ended)  # time passes: no save, no signal
    # A board built while the Ladder ran, just before the end, is still the Ladder's...
    Board.objects.filter(pk=laddered.pk).update(refreshed_at=ended - dt.timedelta(seconds=1))
    phase = Phase.objects.select_related("board").get(pk=laddered.pk)
    version, _ = boards.board_current(phase=phase)  # ...the first request after the end rebuilds it
    assert version == before.version + 1
    assert [(r[0], r[1], r[2], r[3]) for r in rows(phase)][1:] == [(1, "Team C", c.pk, 61.3),
                                                                  (2, "Team A", a[2].pk, 61.2)]
    body = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()
    assert body["ladder"] == "" and body["rows"][1]["scores"]["T_recall"] == pytest.approx(61.3 + 7.1234)
    # Asked again, it is not rebuilt again.
    assert boards.board_current(phase=Phase.objects.get(pk=phase.pk))[0] == version


def test_a_board_rebuilt_during_the_ladder_and_after_the_end_is_not_served_stale(laddered, ladder_board):
    """A rebuild's moment is the one its rows are of: one that read the Ladder just before the end is rebuilt."""
    end = timezone.now() + dt.timedelta(seconds=30)
    Phase.objects.filter(pk=laddered.pk).update(ends_at=end)
    with mock.patch("django.utils.timezone.now", return_value=end - dt.timedelta(seconds=1)):
        boards.board_refresh(phase_id=laddered.pk)
    with mock.patch("django.utils.timezone.now", return_value=end + dt.timedelta(seconds=1)):
        boards.board_current(phase=Phase.objects.get(pk=laddered.pk))
        assert rows(Phase.objects.get(pk=laddered.pk))[1][3] == 61.3  # exact: Team C first


# --- a submission's exact scores, through every interface ----------------------------------------------------


def _token_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")


EXACT = ("61.2", "68.32", "57.76", "59.95")  # A's best: IoU_gold_pred, T_recall, IoU_all, IoU_gold (prefixes)


@pytest.mark.parametrize("persona", ["alice", "bob", "carol", "anonymous"])
def test_no_interface_gives_a_non_organizer_the_exact_scores(laddered, ladder_board, persona, request):
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    best = ladder_board["a"][2]
    api = client_for(user).get(f"/api/v1/submissions/{best.pk}/")
    assert api.status_code == 200
    body = api.json()
    assert body["scores"]["overall"] == {"T_recall": None, "IoU_all": None, "IoU_gold": None, "IoU_gold_pred": 61.0}
    assert body["score_history"] == [] and body["ladder"].startswith("This phase uses the Ladder")
    page = (Client() if user is None else _logged_in(user)).get(f"/submissions/{best.pk}/").content.decode()
    assert "This phase uses the Ladder: exact scores are revealed when the phase ends on" in page
    assert "61.00" in page
    status = (Client() if user is None else _logged_in(user)).get(f"/submissions/{best.pk}/status.json")
    evalai = (Client() if user is None else _token_client(user)).get(f"/api/jobs/submission/{best.pk}/")
    texts = [api.content.decode(), page, status.content.decode(), evalai.content.decode()]
    if persona in ("alice", "bob"):  # the team: its list, through the API and the page, and the result link
        texts.append(client_for(user).get(f"/api/v1/phases/{laddered.pk}/submissions/").content.decode())
        texts.append(_logged_in(user).get(f"/challenges/egomask/phases/{laddered.slug}/submissions/").content.decode())
        link = urlsplit(evalai.json()["submission_result_file"])
        result = Client().get(f"{link.path}?{link.query}")
        assert json.loads(result.content)["scores"]["overall"]["IoU_gold_pred"] == 61.0
        texts.append(result.content.decode())
    for text in texts:
        for exact in EXACT:
            assert exact not in text, (exact, text[:200])


def test_an_organizer_sees_the_exact_scores(laddered, ladder_board, organizer):
    best = ladder_board["a"][2]
    body = client_for(organizer).get(f"/api/v1/submissions/{best.pk}/").json()
    assert body["scores"]["overall"]["IoU_gold_pred"] == 61.2 and body["ladder"] == ""
    assert body["score_history"][0]["scores"]["overall"]["IoU_gold_pred"] == 61.2
    assert "61.20" in _logged_in(organizer).get(f"/submissions/{best.pk}/").content.decode()


def test_after_the_end_everyone_sees_the_exact_scores(laddered, ladder_board, carol):
    best = ladder_board["a"][2]
    Phase.objects.filter(pk=laddered.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))
    body = client_for(carol).get(f"/api/v1/submissions/{best.pk}/").json()
    assert body["scores"]["overall"]["IoU_gold_pred"] == 61.2 and body["ladder"] == ""


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_mail_shows_the_ladder_score_not_the_exact_one(laddered, alice, finished, submit, score,
                                                           django_capture_on_commit_callbacks):
    finished(alice, 10.0, 1)  # the Ladder starts at 10
    submission = submit(alice, quality="noisy")
    with mail_tasks_run(), django_capture_on_commit_callbacks(execute=True):
        score(submission)
    (message,) = mail.outbox
    exact = Score.objects.get(submission=submission, split="overall")
    shown = BoardRow.objects.get(phase=laddered, split="overall", team__name="Team A").IoU_gold_pred
    assert shown != exact.IoU_gold_pred  # the Ladder rounded it (or kept 10)
    assert "This phase uses the Ladder" in message.body
    line = next(row for row in message.body.splitlines() if row.strip().startswith("overall"))
    assert f"IoU_gold_pred {shown:.2f}" in line
    for part in (message.body, message.alternatives[0][0]):
        for metric in METRICS:
            assert f"{getattr(exact, metric):.2f}" not in part or f"{getattr(exact, metric):.2f}" == f"{shown:.2f}"
