"""Quotas that count failures (Phase.quota_counts_failed): a file that fails on its problems (invalid) counts
against the daily and the total quota where the phase says so; a crash of the scorer on the file counts
always; an error on our side (internal) and a cancellation never do. The organizers' dashboard counts the same."""

from __future__ import annotations

import datetime as dt

import pytest

from leaderboard.errors import QuotaExceeded
from leaderboard.submissions.dashboard import challenge_dashboard
from leaderboard.submissions.models import FailureKind, Submission
from leaderboard.submissions.selectors import quota_for

NOW = dt.datetime(2030, 5, 17, 12, 0, tzinfo=dt.UTC)
Status = Submission.Status


def _phase_update(phase, **fields):
    for name, value in fields.items():
        setattr(phase, name, value)
    phase.save()
    return phase


def _ended(submission: Submission, status: str, kind: str = "") -> None:
    Submission.objects.filter(pk=submission.pk).update(status=status, failure_kind=kind)


@pytest.fixture
def one_of_each(alice, submit, phase):
    """Team A today: one finished, one invalid, one crashed, one internal failure, one cancelled."""
    _phase_update(phase, max_per_day=10, max_total=20)
    made = [submit(alice, now=NOW + dt.timedelta(minutes=m)) for m in range(5)]
    _ended(made[0], Status.FINISHED)
    _ended(made[1], Status.FAILED, FailureKind.INVALID)
    _ended(made[2], Status.FAILED, FailureKind.CRASHED)
    _ended(made[3], Status.FAILED, FailureKind.INTERNAL)
    _ended(made[4], Status.CANCELLED)
    return made


def _used(phase, team_id) -> tuple[int, int]:
    quota = quota_for(phase=phase, team_id=team_id, now=NOW + dt.timedelta(hours=1))
    return quota.per_day - quota.per_day_left, quota.total - quota.total_left


def test_by_default_only_a_crash_counts_among_failures(one_of_each, phase):
    assert _used(phase, one_of_each[0].team_id) == (2, 2)  # finished, crashed


def test_where_the_phase_says_so_an_invalid_file_counts_against_both_quotas(one_of_each, phase):
    _phase_update(phase, quota_counts_failed=True)
    assert _used(phase, one_of_each[0].team_id) == (3, 3)  # finished, invalid, crashed; never internal, cancelled


def test_the_dashboard_counts_as_the_quota_does(one_of_each, phase, challenge):
    team_id = one_of_each[0].team_id
    for counts_failed, used in ((False, 2), (True, 3)):
        _phase_update(phase, quota_counts_failed=counts_failed)
        (row,) = [t for t in challenge_dashboard(challenge=challenge, now=NOW + dt.timedelta(hours=1)).teams
                  if t.team_id == team_id]
        (use,) = [u for p, u in row.quotas if p.pk == phase.pk]
        assert (use.today, use.total) == (used, used)


def test_failing_uploads_use_up_the_daily_quota_where_the_phase_says_so(alice, submit, phase):
    _phase_update(phase, max_per_day=2, quota_counts_failed=True)
    for minutes in (0, 1):
        _ended(submit(alice, now=NOW + dt.timedelta(minutes=minutes)), Status.FAILED, FailureKind.INVALID)
    with pytest.raises(QuotaExceeded) as caught:
        submit(alice, now=NOW + dt.timedelta(minutes=2))
    assert caught.value.detail["quota"] == "daily"
    # Without the setting the same failures leave the quota untouched.
    _phase_update(phase, quota_counts_failed=False)
    assert submit(alice, now=NOW + dt.timedelta(minutes=3)).status == Status.SUBMITTED


def test_internal_failures_never_count_even_where_failures_do(alice, submit, phase):
    _phase_update(phase, max_total=1, quota_counts_failed=True)
    _ended(submit(alice, now=NOW), Status.FAILED, FailureKind.INTERNAL)
    assert submit(alice, now=NOW + dt.timedelta(minutes=1)).status == Status.SUBMITTED
    with pytest.raises(QuotaExceeded) as caught:
        submit(alice, now=NOW + dt.timedelta(minutes=2))
    assert caught.value.detail["quota"] == "total"
