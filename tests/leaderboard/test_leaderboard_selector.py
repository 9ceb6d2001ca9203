"""leaderboard_rows: one row per team, ranks with ties, missing values last, baselines, the ranking
rule, what is left out, and private boards. Scores are written directly for exact values."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser

from leaderboard.accounts.models import Team
from leaderboard.challenges.models import Phase
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.selectors import leaderboard_rows
from leaderboard.submissions.moderation import submission_hide

T0 = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)
PRIMARY = "IoU_gold_pred"


@pytest.fixture
def teams(challenge) -> dict[str, Team]:
    return {name: Team.objects.create(challenge=challenge, name=name) for name in ("A", "B", "C", "D", "E")}


@pytest.fixture
def entry(phase):
    """Factory: a finished submission with one Score row on `split`; metrics default to `value`."""
    clock = iter(range(1, 1000))

    def make(team: Team | None, value: float, *, split: str = "overall", minutes: int | None = None,
             status: str = Submission.Status.FINISHED, is_baseline: bool = False, is_public: bool = True,
             method: str | None = None, **metrics: float) -> Submission:
        at = T0 + dt.timedelta(minutes=next(clock) if minutes is None else minutes)
        submission = Submission.objects.create(
            phase=phase, team=team, file_sha256="0" * 64, method_name=method or f"{team or 'baseline'} {value}",
            status=status, is_baseline=is_baseline, is_public=is_public, submitted_at=at,
        )
        add_score(submission, value, split=split, **metrics)
        return submission

    return make


def add_score(submission: Submission, value: float, *, split: str = "overall", **metrics: float) -> Score:
    values = {"T_recall": value, "IoU_all": value, "IoU_gold": value, PRIMARY: value, **metrics}
    return Score.objects.create(submission=submission, split=split, n_expressions=7, scorer_version="1.0.0",
                                gt_version="gt", **values)


def board(phase, **kwargs):
    kwargs.setdefault("split", "overall")
    return leaderboard_rows(phase=phase, **kwargs)


def ranks(result) -> list[tuple[int | None, str | None, float]]:
    return [(row.rank, row.team, row.scores[result.metric]) for row in result.rows]


def test_it_ranks_with_ties_sharing_a_rank(phase, teams, entry):
    entry(teams["A"], 70.0)
    entry(teams["B"], 80.0)
    entry(teams["C"], 60.0)
    entry(teams["D"], 70.0)
    result = board(phase)
    assert result.metric == PRIMARY
    assert result.visible is True
    # Within the tie the earlier submission (A) comes first.
    assert ranks(result) == [(1, "B", 80.0), (2, "A", 70.0), (2, "D", 70.0), (4, "C", 60.0)]


def test_it_describes_each_row(phase, teams, entry):
    submission = entry(teams["A"], 55.5, method="SegEgo", T_recall=61.0)
    Submission.objects.filter(pk=submission.pk).update(method_url="https://example.org/paper",
                                                       code_url="https://example.org/code")
    (row,) = board(phase).rows
    assert (row.rank, row.team, row.team_id, row.method) == (1, "A", teams["A"].pk, "SegEgo")
    assert (row.method_url, row.code_url) == ("https://example.org/paper", "https://example.org/code")
    assert row.is_baseline is False
    assert row.scores == {"T_recall": 61.0, "IoU_all": 55.5, "IoU_gold": 55.5, PRIMARY: 55.5}
    assert row.n_expressions == 7
    assert (row.submission_id, row.submitted_at) == (submission.pk, submission.submitted_at)


def test_it_ties_values_equal_within_1e_6(phase, teams, entry):
    entry(teams["A"], 70.0)
    entry(teams["B"], 70.0 + 4e-7)
    entry(teams["C"], 70.0 - 4e-7)
    entry(teams["D"], 70.0 - 2e-6)
    assert [r[:2] for r in ranks(board(phase))] == [(1, "A"), (1, "B"), (1, "C"), (4, "D")]


def test_it_ties_values_within_1e_6_that_straddle_a_rounding_boundary(phase, teams, entry):
    # 2e-7 apart: the same score for the tie rule, even though they round to different 6th decimals.
    entry(teams["A"], 70.0000004)
    entry(teams["B"], 70.0000006)
    entry(teams["C"], 69.0)
    assert [r[:2] for r in ranks(board(phase))] == [(1, "A"), (1, "B"), (3, "C")]


def test_it_lists_missing_values_last_without_a_rank(phase, teams, entry):
    entry(teams["A"], float("nan"))
    entry(teams["B"], 50.0)
    entry(teams["C"], 60.0)
    rows = board(phase).rows
    assert [(r.rank, r.team) for r in rows] == [(1, "C"), (2, "B"), (None, "A")]


def test_it_prefers_a_submission_with_a_value_as_a_teams_best(phase, teams, entry):
    entry(teams["A"], float("nan"))
    chosen = entry(teams["A"], 40.0)
    (row,) = board(phase).rows
    assert (row.rank, row.submission_id) == (1, chosen.pk)


def test_it_lists_baselines_without_a_rank_or_a_teams_place(phase, teams, entry):
    entry(teams["A"], 80.0)
    entry(None, 75.0, is_baseline=True, method="Baseline X")
    entry(teams["B"], 70.0)
    entry(None, 70.0, is_baseline=True, method="Baseline Y")
    entry(teams["C"], 60.0)
    rows = board(phase).rows
    assert [(r.rank, r.team, r.method, r.is_baseline) for r in rows] == [
        (1, "A", "A 80.0", False),
        (None, None, "Baseline X", True),
        (2, "B", "B 70.0", False),
        (None, None, "Baseline Y", True),
        (3, "C", "C 60.0", False),
    ]


def test_it_shows_each_teams_best_submission_by_default(phase, teams, entry):
    entry(teams["A"], 60.0)
    best = entry(teams["A"], 80.0)
    entry(teams["A"], 70.0)
    entry(teams["B"], 75.0)
    rows = board(phase).rows
    assert [(r.rank, r.team, r.scores[PRIMARY]) for r in rows] == [(1, "A", 80.0), (2, "B", 75.0)]
    assert rows[0].submission_id == best.pk


def test_it_keeps_the_earlier_of_equal_best_submissions(phase, teams, entry):
    first = entry(teams["A"], 80.0)
    entry(teams["A"], 80.0)
    assert [r.submission_id for r in board(phase).rows] == [first.pk]


def test_it_shows_each_teams_latest_submission_under_the_latest_rule(phase, teams, entry):
    phase.ranking_rule = Phase.Rule.LATEST
    phase.save()
    entry(teams["A"], 60.0)
    entry(teams["A"], 80.0)
    latest = entry(teams["A"], 70.0)
    entry(teams["B"], 75.0)
    rows = board(phase).rows
    assert [(r.rank, r.team, r.scores[PRIMARY]) for r in rows] == [(1, "B", 75.0), (2, "A", 70.0)]
    assert rows[1].submission_id == latest.pk


def test_it_chooses_the_best_submission_per_board(phase, teams, entry):
    good_short = entry(teams["A"], 90.0, split="short")
    add_score(good_short, 50.0, split="overall")
    good_overall = entry(teams["A"], 60.0, split="short")
    add_score(good_overall, 70.0, split="overall")
    assert [r.submission_id for r in board(phase, split="short").rows] == [good_short.pk]
    assert [r.submission_id for r in board(phase, split="overall").rows] == [good_overall.pk]


def test_it_chooses_by_the_primary_metric_but_sorts_by_the_asked_metric(phase, teams, entry):
    a_best = entry(teams["A"], 80.0, T_recall=10.0)
    entry(teams["A"], 70.0, T_recall=95.0)  # better T_recall, worse primary: not A's row
    entry(teams["B"], 75.0, T_recall=20.0)
    entry(teams["C"], 60.0, T_recall=20.0)

    by_primary = board(phase)
    assert [(r.rank, r.team) for r in by_primary.rows] == [(1, "A"), (2, "B"), (3, "C")]

    by_recall = board(phase, metric="T_recall")
    assert by_recall.metric == "T_recall"
    assert ranks(by_recall) == [(1, "B", 20.0), (1, "C", 20.0), (3, "A", 10.0)]
    assert by_recall.rows[2].submission_id == a_best.pk


def test_it_refuses_an_unknown_metric(phase):
    with pytest.raises(ValueError, match="unknown metric"):
        board(phase, metric="accuracy")


def test_it_leaves_out_hidden_private_failed_and_unfinished_submissions(organizer, phase, teams, entry):
    shown = entry(teams["A"], 50.0)
    hidden = entry(teams["A"], 90.0)
    submission_hide(submission=hidden, by=organizer, reason="a test", hidden=True)
    entry(teams["A"], 85.0, is_public=False)
    entry(teams["B"], 95.0, status=Submission.Status.FAILED)
    for status in Submission.ACTIVE:  # never scored yet: no Score rows
        entry(teams["C"], 99.0, status=status).scores.all().delete()
    entry(teams["D"], 97.0, status=Submission.Status.CANCELLED)
    rows = board(phase).rows
    assert [(r.rank, r.team, r.submission_id) for r in rows] == [(1, "A", shown.pk)]

    submission_hide(submission=hidden, by=organizer, reason="a test", hidden=False)
    assert [r.submission_id for r in board(phase).rows] == [hidden.pk]


def test_it_keeps_previous_scores_on_the_board_while_a_submission_is_rescored(organizer, phase, teams, entry):
    from leaderboard.submissions.services import submission_rescore

    first = entry(teams["A"], 60.0)
    entry(teams["B"], 50.0)
    submission_rescore(submission=first, by=organizer, reason="a test")
    first.refresh_from_db()
    assert (first.status, first.attempt) == (Submission.Status.SUBMITTED, 2)
    assert ranks(board(phase)) == [(1, "A", 60.0), (2, "B", 50.0)]

    Submission.objects.filter(pk=first.pk).update(status=Submission.Status.FAILED)  # the new attempt failed
    assert ranks(board(phase)) == [(1, "B", 50.0)]


def test_it_leaves_out_hidden_baselines(organizer, phase, teams, entry):
    baseline = entry(None, 75.0, is_baseline=True)
    submission_hide(submission=baseline, by=organizer, reason="a test", hidden=True)
    assert board(phase).rows == ()


def test_it_says_when_a_visible_board_is_empty(phase):
    result = board(phase)
    assert (result.visible, result.rows, result.message) == (True, (), "No scored submissions yet.")


def _viewer(request, persona: str | None):
    if persona == "anonymous":
        return AnonymousUser()
    return request.getfixturevalue(persona) if persona else None


@pytest.fixture
def private_phase(phase, teams, entry):
    phase.visibility = Phase.Visibility.PRIVATE
    phase.reveal_at = T0 + dt.timedelta(days=30)
    phase.save()
    entry(teams["A"], 80.0)
    entry(None, 50.0, is_baseline=True)
    return phase


@pytest.mark.parametrize("persona", [None, "anonymous", "eve", "alice"])
def test_it_shows_a_private_board_to_nobody_but_organizers_before_the_reveal(request, private_phase, persona):
    result = board(private_phase, viewer=_viewer(request, persona),
                   now=private_phase.reveal_at - dt.timedelta(seconds=1))
    assert (result.visible, result.rows) == (False, ())
    assert result.message == "This leaderboard is private until 2030-03-31 09:00 UTC."


def test_it_shows_a_private_board_to_organizers(private_phase, organizer):
    result = board(private_phase, viewer=organizer, now=T0)
    assert result.visible is True
    assert [(r.rank, r.team) for r in result.rows] == [(1, "A"), (None, None)]


@pytest.mark.parametrize("persona", [None, "eve"])
def test_it_shows_a_private_board_to_everyone_from_the_reveal_time(request, private_phase, persona):
    result = board(private_phase, viewer=_viewer(request, persona), now=private_phase.reveal_at)
    assert result.visible is True
    assert [(r.rank, r.team) for r in result.rows] == [(1, "A"), (None, None)]


def test_it_keeps_a_private_board_without_reveal_time_private(private_phase, eve):
    private_phase.reveal_at = None
    private_phase.save()
    result = board(private_phase, viewer=eve, now=T0 + dt.timedelta(days=3650))
    assert (result.visible, result.rows, result.message) == (False, (), "This leaderboard is private.")
