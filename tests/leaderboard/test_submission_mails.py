"""The submitter's mail when a submission is scored or fails: sent by a task on the maintenance queue after
the end is committed, once, retried when the mail server fails, never touching the submission."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pytest
from django.core import mail
from django.utils import timezone

from leaderboard.notifications import services
from leaderboard.notifications.models import Delivery
from leaderboard.notifications.services import SEND_SUBMISSION_MAIL
from leaderboard.notifications.tasks import send_submission_mail
from leaderboard.submissions.models import Submission

from .mailkit import FLAKY, FlakySMTPBackend, mail_tasks_run


def not_predictions() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "no split folders here")
    return buffer.getvalue()


def ended(submission, score, capture):  # type: ignore[no-untyped-def]
    """Score the submission as the worker would, running what its end queues on commit; the tasks sent."""
    with mail_tasks_run() as sent, capture(execute=True):
        score(submission)
    return sent


def test_it_mails_the_scores_with_two_decimals_and_a_link_once_scored(alice, submit, score,
                                                                      django_capture_on_commit_callbacks):
    submission = submit(alice, quality="noisy")
    sent = ended(submission, score, django_capture_on_commit_callbacks)
    assert (SEND_SUBMISSION_MAIL, (submission.pk, "finished")) in sent
    (message,) = mail.outbox
    assert message.to == ["alice@example.org"]
    assert message.subject == f"[EgoMask] Submission #{submission.pk} (My method) scored"
    for s in submission.scores.all():
        line = next(row for row in message.body.splitlines() if row.strip().startswith(s.split))
        assert f"IoU_gold_pred {s.IoU_gold_pred:.2f}" in line and f"T_recall {s.T_recall:.2f}" in line
    assert f"/submissions/{submission.pk}/" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert re.match(r"<http://.+/unsubscribe/[^/]+/>$", message.extra_headers["List-Unsubscribe"])
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_it_mails_the_failure_as_the_team_sees_it_never_the_crash_report(alice, submit, score):
    submission = score(submit(alice, data=not_predictions()))
    assert submission.status == Submission.Status.FAILED
    Submission.objects.filter(pk=submission.pk).update(crash_report="Traceback: SECRET-INTERNALS")
    send_submission_mail.apply(args=(submission.pk, "failed"))
    (message,) = mail.outbox
    assert message.subject.endswith("failed")
    assert submission.failure_message in message.body
    assert "SECRET-INTERNALS" not in message.body + message.alternatives[0][0]


def test_it_sends_nothing_to_a_submitter_who_opted_out(alice, submit, score, django_capture_on_commit_callbacks):
    services.preferences_set(user=alice, submission_mails=False, announcement_mails=True)
    ended(submit(alice), score, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert not Delivery.objects.exists()


def test_it_sends_nothing_for_a_baseline(organizer, phase, submit, score,
                                                                   django_capture_on_commit_callbacks):
    ended(submit(organizer, is_baseline=True), score, django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_it_sends_a_redelivered_task_s_mail_once(alice, submit, score):
    submission = score(submit(alice))
    send_submission_mail.apply(args=(submission.pk, "finished"))
    send_submission_mail.apply(args=(submission.pk, "finished"))
    assert len(mail.outbox) == 1
    assert Delivery.objects.filter(key=f"submission:{submission.pk}:finished").count() == 1


def test_it_leaves_a_refused_mail_to_the_sweep_and_the_submission_alone(alice, submit, score, settings):
    settings.EMAIL_BACKEND = FLAKY
    FlakySMTPBackend.reset(fail={1, 2})
    submission = score(submit(alice))
    before = Submission.objects.filter(pk=submission.pk).values().get()
    result = send_submission_mail.apply(args=(submission.pk, "finished"))
    # The task succeeds without a retry of its own (none waits in the worker): nothing sent, nothing recorded.
    assert result.successful() and (FlakySMTPBackend.tries, len(mail.outbox)) == (1, 0)
    assert not Delivery.objects.exists()
    later = timezone.now() + dt.timedelta(seconds=settings.MAIL_RETRY_SECONDS + 1)
    assert services.mail_retry_pending(now=later) == 0  # refused again: the sweep stops at once
    assert services.mail_retry_pending(now=later) == 1  # the third try goes out
    assert services.mail_retry_pending(now=later) == 0  # and only once
    assert (FlakySMTPBackend.tries, len(mail.outbox)) == (3, 1)
    assert Submission.objects.filter(pk=submission.pk).values().get() == before


def test_the_sweep_sends_what_a_lost_task_did_not_and_nothing_else(alice, bob, carol, submit, score, settings):
    # The broker was down when these ended: no task ran. The sweep mails each submitter once, in the window,
    # not a submission that ended a moment ago (its task may be at work), not one older than the window,
    # not to whoever opted out.
    services.preferences_set(user=carol, submission_mails=False, announcement_mails=True)
    now = timezone.now()
    lost, recent, old, opted_out = (score(submit(user)) for user in (alice, bob, alice, carol))
    Submission.objects.filter(pk=lost.pk).update(finished_at=now - dt.timedelta(minutes=5))
    Submission.objects.filter(pk=old.pk).update(finished_at=now - dt.timedelta(seconds=settings.MAIL_RETRY_WINDOW + 60))
    Submission.objects.filter(pk=opted_out.pk).update(finished_at=now - dt.timedelta(minutes=5))
    Submission.objects.filter(pk=recent.pk).update(finished_at=now)
    assert services.mail_retry_pending(now=now) == 1
    assert [m.to for m in mail.outbox] == [[alice.email]] and f"#{lost.pk}" in mail.outbox[0].subject
    assert services.mail_retry_pending(now=now) == 0


def test_it_does_not_fail_the_scoring_when_the_broker_refuses_the_mail_task(alice, submit, score,
                                                                           django_capture_on_commit_callbacks,
                                                                           monkeypatch):
    from leaderboard import celery_app

    def broker_down(name, args=(), **options):  # type: ignore[no-untyped-def]
        raise OSError("Connection refused")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    submission = submit(alice)
    with django_capture_on_commit_callbacks(execute=True):
        score(submission)
    assert Submission.objects.get(pk=submission.pk).status == Submission.Status.FINISHED


@pytest.mark.parametrize("status", ["finished", "failed"])
def test_it_sends_nothing_when_the_submission_moved_on(alice, submit, status):
    submission = submit(alice)  # still submitted: a rescore is under way, say
    send_submission_mail.apply(args=(submission.pk, status))
    assert mail.outbox == []
