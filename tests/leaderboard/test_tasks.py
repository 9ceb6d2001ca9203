"""The Celery tasks, called directly (no eager mode): scoring, its failure handling and retries, and
the reconciler that re-enqueues what is stuck."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

from leaderboard.submissions import grading
from leaderboard.submissions.grading import submissions_reconcile
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.tasks import MAX_RETRIES, reconcile_submissions, score_submission

from .conftest import scoring_tasks_sent

Status = Submission.Status
NOW = dt.datetime(2030, 5, 17, 12, 0, tzinfo=dt.UTC)
INTERNAL_ERROR = "An internal error stopped the scoring of this submission."


def _claim_then_raise(exc: BaseException):
    """A stand-in for submission_score that claims the attempt as the real one does, then breaks."""

    def run(*, submission_id: int, attempt: int):
        assert grading._claim(submission_id, attempt, Status.SUBMITTED, Status.VALIDATING,
                               started_at=NOW)
        raise exc

    return run


def _state(submission: Submission) -> tuple[str, int]:
    submission.refresh_from_db()
    return submission.status, submission.attempt


# --- score_submission ------------------------------------------------------------------------


def test_it_scores_a_submission(alice, submit):
    submission = submit(alice, quality="perfect")
    assert score_submission(submission.pk, 1) is None
    assert _state(submission) == (Status.FINISHED, 1)
    assert Score.objects.filter(submission=submission).count() == 4


def test_it_is_a_no_op_when_delivered_twice(alice, submit):
    submission = submit(alice, quality="good")
    score_submission(submission.pk, 1)
    finished_at = Submission.objects.get(pk=submission.pk).finished_at
    score_submission(submission.pk, 1)
    assert _state(submission) == (Status.FINISHED, 1)
    assert submission.finished_at == finished_at
    assert Score.objects.filter(submission=submission).count() == 4


def test_it_fails_an_attempt_that_runs_past_the_soft_time_limit(alice, submit):
    submission = submit(alice)
    with mock.patch.object(grading, "submission_score", side_effect=_claim_then_raise(SoftTimeLimitExceeded())):
        score_submission(submission.pk, 1)
    assert _state(submission) == (Status.FAILED, 1)
    assert f"took longer than {settings.SCORING_SOFT_TIME_LIMIT} seconds" in submission.failure_message
    assert "not a problem with your file" in submission.failure_message


def test_it_retries_an_unexpected_error_as_the_next_attempt(alice, submit):
    # The claimed attempt never moves back to `submitted`: the retry is attempt 2, waiting, and says why.
    submission = submit(alice)
    with mock.patch.object(grading, "submission_score", side_effect=_claim_then_raise(OSError("storage down"))), \
            pytest.raises(OSError, match="storage down"):
        score_submission(submission.pk, 1)  # called directly, retry() re-raises the error
    assert _state(submission) == (Status.SUBMITTED, 2)
    assert submission.started_at is None
    assert submission.failure_message == ""
    assert submission.retry_reason == "internal"


def test_it_retries_after_an_unexpected_error_and_then_scores(alice, submit):
    submission = submit(alice, quality="perfect")
    real = grading.submission_score
    calls = []

    def flaky(*, submission_id: int, attempt: int):
        calls.append((submission_id, attempt))
        if len(calls) == 1:
            return _claim_then_raise(OSError("storage blinked"))(submission_id=submission_id, attempt=attempt)
        return real(submission_id=submission_id, attempt=attempt)

    with mock.patch.object(grading, "submission_score", side_effect=flaky):
        score_submission.apply(args=(submission.pk, 1))
    assert calls == [(submission.pk, 1), (submission.pk, 2)]
    assert _state(submission) == (Status.FINISHED, 2)
    assert Score.objects.filter(submission=submission).count() == 4
    assert submission.retry_reason == ""  # cleared once scored


def test_it_retries_an_error_raised_before_the_attempt_was_claimed(alice, submit):
    submission = submit(alice, quality="perfect")
    real = grading.submission_score
    calls = []

    def flaky(*, submission_id: int, attempt: int):
        calls.append((submission_id, attempt))
        if len(calls) == 1:
            raise OSError("database connection reset")
        return real(submission_id=submission_id, attempt=attempt)

    with mock.patch.object(grading, "submission_score", side_effect=flaky):
        score_submission.apply(args=(submission.pk, 1))
    assert calls == [(submission.pk, 1), (submission.pk, 2)]
    assert _state(submission) == (Status.FINISHED, 2), submission.failure_message


def test_it_gives_up_after_max_retries_with_the_internal_error_message(alice, submit):
    submission = submit(alice)
    broken = mock.Mock(side_effect=_claim_then_raise(OSError("storage down for good")))
    with mock.patch.object(grading, "submission_score", broken):
        score_submission.apply(args=(submission.pk, 1))
    assert broken.call_count == 1 + MAX_RETRIES
    assert [c.kwargs["attempt"] for c in broken.call_args_list] == list(range(1, 2 + MAX_RETRIES))
    assert _state(submission) == (Status.FAILED, 1 + MAX_RETRIES)
    assert submission.failure_kind == "internal"
    assert submission.failure_message.startswith(INTERNAL_ERROR)
    assert "does not count against your quota" in submission.failure_message
    assert submission.finished_at is not None


def test_it_leaves_a_newer_attempt_alone_when_an_old_one_breaks(alice, submit):
    submission = submit(alice)

    def superseded_then_raise(*, submission_id: int, attempt: int):
        grading._claim(submission_id, attempt, Status.SUBMITTED, Status.VALIDATING, started_at=NOW)
        grading.submission_retry(submission_id=submission_id, attempt=attempt)
        raise OSError("late failure of the old attempt")

    with mock.patch.object(grading, "submission_score", side_effect=superseded_then_raise):
        score_submission.apply(args=(submission.pk, 1))
    assert _state(submission) == (Status.SUBMITTED, 2)
    assert submission.failure_message == ""


# --- reconcile -------------------------------------------------------------------------------


def _make(submit, user, *, status: str, submitted_at: dt.datetime, started_at: dt.datetime | None = None,
          attempt: int = 1) -> Submission:
    submission = submit(user)
    Submission.objects.filter(pk=submission.pk).update(status=status, submitted_at=submitted_at,
                                                       started_at=started_at, attempt=attempt)
    submission.refresh_from_db()
    return submission


def test_it_requeues_a_submitted_row_older_than_two_minutes_with_the_same_attempt(alice, submit):
    old = _make(submit, alice, status=Status.SUBMITTED, submitted_at=NOW - dt.timedelta(minutes=2, seconds=1),
                attempt=3)
    _make(submit, alice, status=Status.SUBMITTED, submitted_at=NOW - dt.timedelta(minutes=1))
    _make(submit, alice, status=Status.SUBMITTED, submitted_at=NOW - dt.timedelta(minutes=2))
    sent = []

    result = submissions_reconcile(now=NOW, enqueue=lambda s: sent.append((s.pk, s.attempt)))

    assert result == {"requeued": 1, "restarted": 0}
    assert sent == [(old.pk, 3)]
    assert _state(old) == (Status.SUBMITTED, 3)


@pytest.mark.parametrize("status", [Status.VALIDATING, Status.SCORING])
def test_it_restarts_a_claimed_row_stuck_past_the_limit_as_a_new_attempt(
        alice, submit, status, settings, django_capture_on_commit_callbacks):
    settings.SCORING_STUCK_AFTER = 600
    long_ago = NOW - dt.timedelta(hours=1)
    stuck = _make(submit, alice, status=status, submitted_at=long_ago,
                  started_at=NOW - dt.timedelta(seconds=601))
    fresh = _make(submit, alice, status=status, submitted_at=long_ago,
                  started_at=NOW - dt.timedelta(seconds=599))

    with scoring_tasks_sent() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        result = submissions_reconcile(now=NOW)

    assert result == {"requeued": 0, "restarted": 1}
    delay.assert_called_once_with(stuck.pk, 2)
    assert _state(stuck) == (Status.SUBMITTED, 2)
    assert stuck.started_at is None
    assert _state(fresh) == (status, 1)
    assert fresh.started_at == NOW - dt.timedelta(seconds=599)
    # The lost worker's attempt can no longer write anything.
    assert grading.submission_score(submission_id=stuck.pk, attempt=1) is None


def test_it_leaves_finished_failed_and_cancelled_rows_alone(alice, submit, django_capture_on_commit_callbacks):
    long_ago = NOW - dt.timedelta(days=1)
    rows = [_make(submit, alice, status=status, submitted_at=long_ago, started_at=long_ago)
            for status in Submission.TERMINAL]
    with scoring_tasks_sent() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        assert submissions_reconcile(now=NOW) == {"requeued": 0, "restarted": 0}
    delay.assert_not_called()
    assert [_state(s) for s in rows] == [(status, 1) for status in Submission.TERMINAL]


def test_it_reconciles_from_the_periodic_task(alice, submit, django_capture_on_commit_callbacks):
    now = dt.datetime.now(dt.UTC)
    waiting = _make(submit, alice, status=Status.SUBMITTED, submitted_at=now - dt.timedelta(minutes=10))
    stuck = _make(submit, alice, status=Status.SCORING, submitted_at=now - dt.timedelta(days=1),
                  started_at=now - dt.timedelta(seconds=settings.SCORING_STUCK_AFTER + 60))
    with scoring_tasks_sent() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        assert reconcile_submissions() == {"requeued": 1, "restarted": 1}
    assert sorted(c.args for c in delay.call_args_list) == sorted([(waiting.pk, 1), (stuck.pk, 2)])


def test_it_retries_the_same_attempt_when_the_database_is_what_failed(alice, submit):
    # Nothing can be recorded while the database is away: the task retries the attempt it was given.
    submission = submit(alice, quality="perfect")
    real = grading.submission_score
    calls = []

    def database_restarts(*, submission_id: int, attempt: int):
        calls.append(attempt)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real(submission_id=submission_id, attempt=attempt)

    with mock.patch.object(grading, "submission_score", side_effect=database_restarts), \
            mock.patch.object(grading, "submission_retry", side_effect=OperationalError("the database is starting up")):
        score_submission.apply(args=(submission.pk, 1))
    assert calls == [1, 1]
    assert _state(submission) == (Status.FINISHED, 1)


def test_it_sends_a_waiting_row_again_at_most_every_two_minutes(alice, submit, django_capture_on_commit_callbacks):
    # A long queue is not flooded: a row is sent again two minutes after it was last sent, not at every run.
    waiting = _make(submit, alice, status=Status.SUBMITTED, submitted_at=NOW - dt.timedelta(hours=1))
    sent = []
    assert submissions_reconcile(now=NOW, enqueue=lambda s: sent.append(s.pk))["requeued"] == 1
    waiting.refresh_from_db()
    assert waiting.queued_at == NOW
    for later, expected in ((NOW + dt.timedelta(seconds=5), 0), (NOW + dt.timedelta(minutes=1), 0),
                            (NOW + dt.timedelta(minutes=2, seconds=1), 1)):
        assert submissions_reconcile(now=later, enqueue=lambda s: sent.append(s.pk))["requeued"] == expected
    assert sent == [waiting.pk, waiting.pk]
    retried = grading.submission_retry(submission_id=waiting.pk, attempt=1, enqueue=False)
    assert submissions_reconcile(now=retried.queued_at + dt.timedelta(seconds=30),
                                 enqueue=lambda s: sent.append(s.pk))["requeued"] == 0  # just sent by the retry
