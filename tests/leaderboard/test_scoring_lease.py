"""Scoring under a lease (issue 9, defect 2): the worker renews it while it scores; an attempt whose lease
ran out (its worker was killed) is taken over as the next attempt by the redelivered task or by the
reconciler, in seconds; a live worker's attempt is never taken; a lost attempt can write nothing.

Committed rows (`transactional_db`) where a second thread or connection must see them, as in a worker."""

from __future__ import annotations

import datetime as dt
import threading
import time
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from leaderboard.submissions import grading
from leaderboard.submissions.grading import MAX_LOST_WORKERS, submissions_reconcile
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.tasks import score_submission

from .conftest import scoring_tasks_sent

Status = Submission.Status


def _left_by_a_dead_worker(submission: Submission, *, expired_for: float = 1.0, status: str = Status.SCORING,
                           lost: int = 0) -> None:
    now = timezone.now()
    Submission.objects.filter(pk=submission.pk).update(
        status=status, started_at=now - dt.timedelta(minutes=1), lease_owner="a-worker-that-was-killed",
        lease_expires_at=now - dt.timedelta(seconds=expired_for), lost_workers=lost)


def test_a_redelivered_task_takes_over_an_attempt_whose_lease_ran_out(alice, submit):
    submission = submit(alice, quality="perfect")
    _left_by_a_dead_worker(submission)
    score_submission(submission.pk, 1)  # the message the dead worker never acknowledged, delivered again
    submission.refresh_from_db()
    assert (submission.status, submission.attempt, submission.lost_workers) == (Status.FINISHED, 2, 1)
    assert (submission.retry_reason, submission.lease_expires_at) == ("", None)  # done: nothing to say any more
    assert Score.objects.filter(submission=submission).count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_task_waits_out_a_fresh_lease_and_leaves_a_live_worker_alone(alice, submit, settings):
    settings.SCORING_LEASE_SECONDS = 1
    with scoring_tasks_sent():  # committed at once here: keep the message out of any broker
        submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(status=Status.SCORING, started_at=timezone.now(),
                                                       lease_owner="alive", lease_expires_at=timezone.now()
                                                       + dt.timedelta(seconds=1))
    stop = threading.Event()

    def live_worker() -> None:  # renews its lease as _lease_kept does
        while not stop.wait(0.2):
            Submission.objects.filter(pk=submission.pk).update(
                lease_expires_at=timezone.now() + dt.timedelta(seconds=1))
        connection.close()

    beat = threading.Thread(target=live_worker)
    beat.start()
    try:
        started = time.monotonic()
        assert grading.submission_score(submission_id=submission.pk, attempt=1) is None
        waited = time.monotonic() - started
    finally:
        stop.set()
        beat.join()
    submission.refresh_from_db()
    assert (submission.status, submission.attempt, submission.lease_owner) == (Status.SCORING, 1, "alive")
    assert 0.5 < waited < 3  # it waited for the lease once, saw it renewed, and gave up


@pytest.mark.django_db(transaction=True)
def test_the_worker_renews_its_lease_while_it_scores(alice, submit, settings):
    settings.SCORING_LEASE_SECONDS = 1  # renewed every 0.25 s
    with scoring_tasks_sent():
        submission = submit(alice, quality="perfect")
    real = grading.evaluate
    seen = []

    def slow(gt, path, **options):
        seen.append(Submission.objects.get(pk=submission.pk).lease_expires_at)
        time.sleep(1.5)  # longer than the lease: without renewals it would run out
        seen.append(Submission.objects.get(pk=submission.pk).lease_expires_at)
        return real(gt, path, **options)

    with mock.patch.object(grading, "evaluate", side_effect=slow):
        grading.submission_score(submission_id=submission.pk, attempt=1)
    submission.refresh_from_db()
    assert (submission.status, submission.attempt) == (Status.FINISHED, 1)
    assert seen[1] > seen[0] + dt.timedelta(seconds=1) and seen[1] > timezone.now() - dt.timedelta(seconds=1)


def test_an_attempt_taken_over_while_it_scores_writes_nothing(alice, submit):
    submission = submit(alice, quality="perfect")
    real = grading.evaluate

    def taken_over_meanwhile(gt, path, **options):
        # This worker was thought dead (say it stalled past its lease) and another one took over.
        Submission.objects.filter(pk=submission.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
        assert grading.submission_take_over(submission_id=submission.pk, attempt=1, owner="the-other-worker")
        return real(gt, path, **options)

    with mock.patch.object(grading, "evaluate", side_effect=taken_over_meanwhile):
        assert grading.submission_score(submission_id=submission.pk, attempt=1).status == Status.VALIDATING
    submission.refresh_from_db()
    assert (submission.attempt, submission.lease_owner, submission.retry_reason) == (2, "the-other-worker",
                                                                                    "worker_lost")
    assert not Score.objects.filter(submission=submission).exists()


def test_only_one_of_two_takes_over(alice, submit):
    submission = submit(alice)
    _left_by_a_dead_worker(submission)
    wins = [grading.submission_take_over(submission_id=submission.pk, attempt=1, owner=name) for name in "ab"]
    assert wins == [True, False]


def test_the_reconciler_restarts_an_expired_lease_and_the_page_says_why(alice, submit, client,
                                                                        django_capture_on_commit_callbacks):
    lost = submit(alice)
    _left_by_a_dead_worker(lost, status=Status.VALIDATING)
    alive = submit(alice)
    Submission.objects.filter(pk=alive.pk).update(status=Status.SCORING, started_at=timezone.now(),
                                                  lease_owner="alive",
                                                  lease_expires_at=timezone.now() + dt.timedelta(seconds=5))
    with scoring_tasks_sent() as sent, django_capture_on_commit_callbacks(execute=True):
        assert submissions_reconcile() == {"requeued": 0, "restarted": 1}
    sent.assert_called_once_with(lost.pk, 2)
    lost.refresh_from_db()
    assert (lost.status, lost.attempt, lost.retry_reason, lost.lost_workers) == (Status.SUBMITTED, 2,
                                                                                 "worker_lost", 1)
    assert lost.status_note == "Retrying after a worker stopped (attempt 2)."
    assert Submission.objects.get(pk=alive.pk).attempt == 1

    client.force_login(alice)
    page = client.get(f"/submissions/{lost.pk}/").content.decode()
    assert "Retrying after a worker stopped (attempt 2)." in page
    status = client.get(f"/submissions/{lost.pk}/status.json").json()
    assert status["status_note"] == "Retrying after a worker stopped (attempt 2)."
    from .apiclient import client_for
    assert client_for(alice).get(f"/api/v1/submissions/{lost.pk}/").json()["status_note"] == lost.status_note


def test_a_file_that_takes_down_workers_again_and_again_fails_without_using_quota(alice, submit, phase):
    submission = submit(alice)
    _left_by_a_dead_worker(submission, lost=MAX_LOST_WORKERS - 1)
    score_submission(submission.pk, 1)
    submission.refresh_from_db()
    assert (submission.status, submission.failure_kind) == (Status.FAILED, "internal")
    assert submission.failure_message.startswith(f"The scoring worker stopped {MAX_LOST_WORKERS} times while "
                                                 "scoring this submission")
    assert not Submission.objects.filter(Submission.counted(), pk=submission.pk).exists()
