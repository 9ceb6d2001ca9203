"""`manage.py seed_load`: a phase filled with many scored submissions from many teams by bulk inserts,
spread like a real phase, its boards built the normal way; bad arguments are one sentence."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from leaderboard.accounts.models import Membership, Team
from leaderboard.challenges.models import Phase
from leaderboard.submissions.models import Board, BoardRow, Score, Submission
from leaderboard.submissions.selectors import board_get, leaderboard_rows
from scoring import METRICS

Status = Submission.Status


def seed(phase: str = "load/main", submissions: int = 400, teams: int = 40, seed: int = 3) -> str:
    out = io.StringIO()
    call_command("seed_load", "--phase", phase, "--submissions", str(submissions), "--teams", str(teams),
                 "--seed", str(seed), stdout=out)
    return out.getvalue()


def test_it_seeds_a_phase_and_builds_its_boards(db):
    message = seed()
    phase = Phase.objects.get(challenge__slug="load", slug="main")
    submissions = Submission.objects.filter(phase=phase)
    assert submissions.count() == 400 and "Seeded 400 submissions" in message and "from 40 teams" in message
    assert Team.objects.filter(challenge=phase.challenge).count() == 40
    assert Membership.objects.filter(challenge=phase.challenge, role=Membership.Role.OWNER).count() == 40
    assert set(submissions.exclude(team=None).values_list("team", flat=True)) == set(
        Team.objects.filter(challenge=phase.challenge).values_list("pk", flat=True))  # every team submitted
    # Some of each kind a real phase has.
    kinds = {"failed": submissions.filter(status=Status.FAILED).count(),
             "cancelled": submissions.filter(status=Status.CANCELLED).count(),
             "private": submissions.filter(is_public=False).count(), "hidden": submissions.filter(hidden=True).count(),
             "baselines": submissions.filter(is_baseline=True).count()}
    assert all(kinds.values()) and kinds["baselines"] == 3, kinds
    finished = submissions.filter(status=Status.FINISHED)
    assert Score.objects.filter(submission__phase=phase).count() == 4 * finished.count()
    assert not Score.objects.filter(submission__phase=phase).exclude(submission__status=Status.FINISHED).exists()
    values = list(Score.objects.filter(submission__phase=phase, split="long").values_list("IoU_gold_pred", flat=True))
    assert 0 <= min(values) < max(values) <= 100 and len(set(values)) > 100  # a spread, not one number

    board = Board.objects.get(phase=phase)
    assert board.version >= 1 and f"version {board.version}" in message
    overall = board_get(phase=phase, split="overall")
    assert len([r for r in overall.rows if not r.is_baseline]) > 30 and [r.rank for r in overall.rows][0] == 1
    assert overall.rows == leaderboard_rows(phase=phase, split="overall").rows
    for metric in METRICS:
        assert board_get(phase=phase, split="long", metric=metric).rows == leaderboard_rows(
            phase=phase, split="long", metric=metric).rows
    assert BoardRow.objects.filter(phase=phase).count() == sum(
        len(leaderboard_rows(phase=phase, split=split, include_reported=True).rows)
        for split in ("short", "medium", "long", "overall"))


def test_it_gives_the_same_scores_for_the_same_seed(db):
    seed("one/main", seed=11)
    seed("two/main", seed=11)

    def scores(challenge: str) -> list[float]:
        return sorted(Score.objects.filter(submission__phase__challenge__slug=challenge)
                      .values_list("IoU_gold_pred", flat=True))

    assert scores("one") == scores("two")


def test_it_reuses_the_load_teams_of_the_challenge_for_a_second_phase(db):
    seed("load/first", teams=20, submissions=60)
    seed("load/second", teams=30, submissions=90)
    assert Team.objects.filter(challenge__slug="load").count() == 30
    assert Submission.objects.filter(phase__slug="second").exclude(team=None).values("team").distinct().count() == 30


@pytest.mark.parametrize(("args", "message"), [
    (["--phase", "just-a-phase"], "CHALLENGE/PHASE"),
    (["--phase", "load/main", "--teams", "0"], "--teams must be at least 1"),
    (["--phase", "load/main", "--teams", "50", "--submissions", "20"], "at least --teams"),
])
def test_it_refuses_bad_arguments_in_one_sentence(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_load", *args)


def test_it_refuses_a_phase_that_has_submissions(db):
    seed(submissions=50, teams=10)
    with pytest.raises(CommandError, match="already has 50 submissions; seed a new phase"):
        seed(submissions=50, teams=10)


def test_its_boards_carry_intervals_and_tie_groups_from_the_seeded_analyses(db):
    from leaderboard.submissions.models import Analysis

    seed(submissions=300, teams=30)
    phase = Phase.objects.get(challenge__slug="load", slug="main")
    finished = Submission.objects.filter(phase=phase, status=Status.FINISHED)
    assert Analysis.objects.filter(submission__in=finished).count() == finished.count()
    assert len(phase.ground_truth.traits["expressions"]) == 700
    rows = [r for r in board_get(phase=phase, split="long").rows if r.rank is not None]
    assert all(r.tie_group is not None for r in rows)
    groups = {r.tie_group for r in rows}
    assert 1 < len(groups) < len(rows)  # some rows tell apart, some not: 15 videos
    call_command("seed_load", "--phase", "load/bare", "--submissions", "60", "--teams", "10", "--no-statistics",
                 stdout=io.StringIO())
    bare = Phase.objects.get(challenge__slug="load", slug="bare")
    assert all(r.tie_group is None for r in board_get(phase=bare, split="long").rows)
