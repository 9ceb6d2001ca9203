"""Every write that changes what a board lists rebuilds the phase's materialized boards, in its own
transaction: scores, an attempt that fails or is cancelled, a rescore, the public/hidden/baseline flags,
the method fields, the phase's rules, a team's name, reported rows, a newer baseline run, deletions. The
stored boards then equal the live computation; a change that changes nothing keeps the version."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import transaction
from django.test import TestCase

from leaderboard.accounts.models import Team
from leaderboard.accounts.services import team_new_invite_code
from leaderboard.baselines.models import ReportedResult
from leaderboard.baselines.reported import PAPER_FILE, reported_import, reported_parse
from leaderboard.baselines.services import baseline_run_create
from leaderboard.baselines.work import baseline_run_here
from leaderboard.challenges.models import Phase
from leaderboard.challenges.services import phase_create
from leaderboard.submissions import boards, grading
from leaderboard.submissions.models import Board, BoardRow, Score, Submission
from leaderboard.submissions.selectors import board_get, leaderboard_rows
from leaderboard.submissions.moderation import submission_hide, submission_set_baseline
from leaderboard.submissions.services import (
    phase_rescore,
    submission_cancel,
    submission_rescore,
    submission_set_public,
    submission_update_method,
)
from scoring import METRICS

from .baselinekit import *  # noqa: F403  (its fixtures)

Status = Submission.Status
SPLITS = ("short", "medium", "long", "overall")


def version(phase: Phase) -> int:
    return Board.objects.get(phase=phase).version


def served(phase: Phase, split: str = "overall", **kwargs) -> list[tuple]:
    """(rank, team, method, submission id) of the served board's rows."""
    return [(r.rank, r.team, r.method, r.submission_id) for r in board_get(phase=phase, split=split, **kwargs).rows]


def assert_materialized(phase: Phase) -> None:
    """The stored boards are what the ranking rules give now, for every board, sort and variant."""
    phase = Phase.objects.get(pk=phase.pk)
    for split in SPLITS:
        for metric in METRICS:
            for include_reported in (True, False):
                live = leaderboard_rows(phase=phase, split=split, metric=metric, include_reported=include_reported)
                stored = board_get(phase=phase, split=split, metric=metric, include_reported=include_reported)
                assert stored.rows == live.rows, (split, metric, include_reported)


@pytest.fixture
def two(alice, carol, submit, score):
    """Team A (perfect) above Team C (noisy)."""
    return score(submit(alice, "perfect", method_name="Perfect")), score(submit(carol, "noisy", method_name="Noisy"))


def test_it_builds_a_phases_boards_when_the_phase_is_made(challenge):
    phase = phase_create(challenge=challenge, slug="new", name="New")
    assert version(phase) == 1 and not BoardRow.objects.filter(phase=phase).exists()
    assert board_get(phase=phase, split="overall").message == "No scored submissions yet."


def test_it_lists_a_submission_once_it_is_scored(phase, alice, submit, score):
    submission = submit(alice, "good", method_name="Good")
    before = version(phase)
    assert served(phase) == []
    score(submission)
    assert served(phase) == [(1, "Team A", "Good", submission.pk)]
    assert version(phase) == before + 1
    assert {split: len(served(phase, split)) for split in SPLITS} == {split: 1 for split in SPLITS}
    assert_materialized(phase)


def test_it_follows_the_teams_public_flag(phase, two, alice):
    perfect, noisy = two
    submission_set_public(submission=perfect, user=alice, is_public=False)
    assert [row[1] for row in served(phase)] == ["Team C"]
    submission_set_public(submission=perfect, user=alice, is_public=True)
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]
    assert_materialized(phase)


def test_it_keeps_the_version_when_a_change_changes_no_row(phase, two, alice):
    perfect, _ = two
    before = version(phase)
    submission_set_public(submission=perfect, user=alice, is_public=True)  # it is public already
    assert version(phase) == before


def test_it_follows_the_organizers_flags(organizer, phase, two):
    perfect, noisy = two
    submission_hide(submission=noisy, by=organizer, reason="a test", hidden=True)
    assert [row[1] for row in served(phase)] == ["Team A"]
    submission_hide(submission=noisy, by=organizer, reason="a test", hidden=False)
    submission_set_baseline(submission=perfect, by=organizer, reason="a test", is_baseline=True)
    assert served(phase) == [(None, "Team A", "Perfect", perfect.pk), (1, "Team C", "Noisy", noisy.pk)]
    assert board_get(phase=phase, split="overall").rows[0].baseline == {"kind": "uploaded", "runner": None,
                                                                        "version": None}
    assert_materialized(phase)


def test_it_shows_a_new_method_name(phase, two, alice):
    perfect, _ = two
    submission_update_method(submission=perfect, user=alice, method_name="Perfect v2",
                             method_url="https://example.org/v2")
    row = board_get(phase=phase, split="short").rows[0]
    assert (row.method, row.method_url) == ("Perfect v2", "https://example.org/v2")


def test_it_keeps_the_scores_while_rescoring_and_drops_a_failed_attempt(organizer, phase, two, alice):
    perfect, noisy = two
    rescoring = submission_rescore(submission=perfect, by=organizer, reason="a test")
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]  # its previous scores stay
    grading.submission_fail_internal(submission_id=rescoring.pk, attempt=rescoring.attempt, reason="Boom.")
    assert [row[1] for row in served(phase)] == ["Team C"]
    # Rescoring it again puts it back with the scores it still has, until the new attempt ends.
    again = submission_rescore(submission=Submission.objects.get(pk=perfect.pk), by=organizer, reason="a test")
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]
    submission_cancel(submission=again, user=alice)
    assert [row[1] for row in served(phase)] == ["Team C"]
    assert_materialized(phase)


def test_it_shows_a_rescores_new_scores(organizer, phase, two, score):
    perfect, _ = two
    # Scores from an older ground truth, say: the board follows them once rebuilt.
    Score.objects.filter(submission=perfect).update(IoU_gold_pred=1.0)
    boards.board_changed(phase_id=phase.pk)
    assert [row[1] for row in served(phase)] == ["Team C", "Team A"]
    score(submission_rescore(submission=perfect, by=organizer, reason="a test"))
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]
    assert board_get(phase=phase, split="overall").rows[0].scores["IoU_gold_pred"] == 100.0


def test_it_rebuilds_once_for_a_phases_rescore(organizer, phase, two):
    with mock.patch.object(boards, "board_refresh", wraps=boards.board_refresh) as refresh:
        assert phase_rescore(phase=phase, by=organizer, reason="a test") == 2
    assert [call.kwargs for call in refresh.call_args_list] == [{"phase_id": phase.pk}]
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]


def test_it_follows_the_phases_rules(phase, alice, carol, submit, score):
    first = score(submit(alice, "perfect", method_name="First"))
    latest = score(submit(alice, "empty", method_name="Latest"))
    noisy = score(submit(carol, "noisy", method_name="Noisy"))
    assert served(phase) == [(1, "Team A", "First", first.pk), (2, "Team C", "Noisy", noisy.pk)]
    phase.ranking_rule = Phase.Rule.LATEST
    phase.save()
    assert served(phase) == [(1, "Team C", "Noisy", noisy.pk), (2, "Team A", "Latest", latest.pk)]
    phase.primary_metric = "T_recall"
    phase.save()
    assert board_get(phase=phase, split="overall").metric == "T_recall"
    assert_materialized(phase)


def test_it_shows_a_teams_new_name_and_ignores_its_invite_code(phase, two, alice):
    team = Team.objects.get(name="Team A")
    before = version(phase)
    team_new_invite_code(team=team, user=alice)
    assert version(phase) == before
    team.name = "Team Renamed"
    team.save()
    assert [row[1] for row in served(phase)] == ["Team Renamed", "Team C"]


def test_it_lists_reported_rows_as_they_are_imported_edited_and_deleted(phase, two):
    results = reported_parse(PAPER_FILE.read_text())  # the paper gives the three splits, no overall
    reported_import(phase=phase, results=results)

    def reported(split: str = "short") -> set[str]:
        return {r.method for r in board_get(phase=phase, split=split, include_reported=True).rows if r.is_reported}

    assert reported() == {r.method for r in results} and len(reported()) == 6
    assert [r.method for r in board_get(phase=phase, split="short").rows] == ["Perfect", "Noisy"]
    before = version(phase)
    reported_import(phase=phase, results=results)  # the same file again: nothing changes
    assert version(phase) == before
    assert_materialized(phase)

    row = ReportedResult.objects.filter(phase=phase).order_by("method").first()
    row.method = "Renamed in the admin"
    row.save()
    assert "Renamed in the admin" in reported()
    row.delete()
    assert "Renamed in the admin" not in reported() and len(reported()) == 5


def test_it_replaces_a_baseline_run_by_the_newer_one_once_scored(framed_phase, organizer):
    def run(runner: str):
        made = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner=runner).pk)
        return made.submission

    old = run("empty")
    with TestCase.captureOnCommitCallbacks(execute=True):
        grading.submission_score(submission_id=old.pk, attempt=old.attempt)
    assert [row[3] for row in served(framed_phase)] == [old.pk]
    new = run("empty")
    assert [row[3] for row in served(framed_phase)] == [old.pk]  # not scored yet: the old row stays
    with TestCase.captureOnCommitCallbacks(execute=True):
        grading.submission_score(submission_id=new.pk, attempt=new.attempt)
    assert [row[3] for row in served(framed_phase)] == [new.pk]
    assert board_get(phase=framed_phase, split="overall").rows[0].baseline["kind"] == "runner"
    assert_materialized(framed_phase)


def test_it_drops_a_deleted_submission_and_survives_a_deleted_phase(phase, two, submit, alice, score):
    perfect, noisy = two
    second = score(submit(alice, "good", method_name="Second best"))
    perfect.delete()
    assert served(phase) == [(1, "Team A", "Second best", second.pk), (2, "Team C", "Noisy", noisy.pk)]
    phase.delete()  # the boards go with it; nothing is rebuilt halfway
    assert not Board.objects.filter(phase_id=phase.pk).exists()
    assert not BoardRow.objects.filter(phase_id=phase.pk).exists()


def test_it_leaves_the_board_as_it_was_when_the_change_rolls_back(organizer, phase, two):
    perfect, _ = two
    before = version(phase)
    with pytest.raises(RuntimeError), transaction.atomic():
        submission_hide(submission=perfect, by=organizer, reason="a test", hidden=True)
        assert [row[1] for row in served(phase)] == ["Team C"]  # inside: rebuilt with the change
        raise RuntimeError("the request failed after the change")
    assert version(phase) == before
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]


def test_it_rebuilds_what_a_deferred_block_changed_once_at_its_end(organizer, phase, two):
    perfect, noisy = two
    with mock.patch.object(boards, "board_refresh", wraps=boards.board_refresh) as refresh, boards.boards_deferred():
        submission_hide(submission=perfect, by=organizer, reason="a test", hidden=True)
        submission_hide(submission=noisy, by=organizer, reason="a test", hidden=True)
        assert refresh.call_count == 0
        assert len(served(phase)) == 2  # not rebuilt yet
    assert refresh.call_count == 1 and served(phase) == []


def test_it_builds_the_boards_of_a_phase_older_than_them(client, phase, two):
    Board.objects.filter(phase=phase).delete()
    BoardRow.objects.filter(phase=phase).delete()
    body = client.get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()
    assert [row["team"] for row in body["rows"]] == ["Team A", "Team C"]
    assert version(phase) == 1


def test_it_hides_in_bulk_from_the_admin_with_one_rebuild(client, organizer, phase, two):
    client.force_login(organizer)
    with mock.patch.object(boards, "board_refresh", wraps=boards.board_refresh) as refresh:
        client.post("/admin/submissions/submission/", {"action": "hide", "_selected_action": [s.pk for s in two],
                                                       "reason": "a test", "apply_reason": "Hide"})
    assert refresh.call_count == 1 and served(phase) == []


def test_it_reads_the_same_rows_as_the_worker_wrote(phase, alice, carol, submit, score,
                                                  django_capture_on_commit_callbacks):
    """The scoring path a worker takes (the end announced after the commit) leaves the board exact."""
    with django_capture_on_commit_callbacks(execute=True):
        score(submit(alice, "good"))
        score(submit(carol, "perfect", is_public=False))
        score(submit(carol, "noisy"))
    assert [row[1] for row in served(phase)] == ["Team A", "Team C"]
    assert_materialized(phase)

