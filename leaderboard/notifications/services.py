"""Writes: notification choices, the submission mails, announcements (created, queued, delivered)."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone

from leaderboard.challenges.models import Challenge
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError, Conflict, NotAllowed
from leaderboard.lib.markup import render_markdown
from leaderboard.submissions import queue
from leaderboard.submissions import selectors as submissions
from leaderboard.submissions.models import Submission

from . import selectors
from .mail import SEND_ERRORS, compose, deliver_once
from .models import Announcement, Delivery, Preferences

log = logging.getLogger(__name__)

SEND_SUBMISSION_MAIL = "leaderboard.notifications.tasks.send_submission_mail"
SEND_ANNOUNCEMENT = "leaderboard.notifications.tasks.send_announcement"
RETRY_MAIL = "leaderboard.notifications.tasks.retry_mail"
TASK_NAMES = (SEND_SUBMISSION_MAIL, SEND_ANNOUNCEMENT, RETRY_MAIL)
SUBJECT_MAX = Announcement._meta.get_field("subject").max_length
MAILED_STATUSES = (Submission.Status.FINISHED, Submission.Status.FAILED)


def preferences_set(*, user: AbstractBaseUser, submission_mails: bool, announcement_mails: bool) -> Preferences:
    """Save the user's choices."""
    prefs, _ = Preferences.objects.update_or_create(
        user=user, defaults={"submission_mails": submission_mails, "announcement_mails": announcement_mails})
    return prefs


def unsubscribe(*, token: str) -> tuple[AbstractBaseUser, selectors.Topic]:
    """Turn off the topic a signed unsubscribe token names; ApplicationError for a bad token."""
    target = selectors.unsubscribe_target(token=token)
    if target is None:
        raise ApplicationError("This unsubscribe link is not valid (it may be cut short in your mail program). "
                               "Sign in and choose on the e-mail notifications page instead.", status=404)
    user, topic = target
    Preferences.objects.update_or_create(user=user, defaults={selectors.TOPICS[topic]: False})
    return user, topic


# --- a submission's end --------------------------------------------------------------------------------


def submission_mail_queue(*, submission: Submission) -> None:
    """Queue the submitter's mail for an attempt that finished or failed (not a baseline, not a cancel)."""
    if submission.status in MAILED_STATUSES and not submission.is_baseline and submission.user_id:
        queue.send_on_commit(SEND_SUBMISSION_MAIL, submission.pk, submission.status)


def submission_mail_send(*, submission_id: int, status: str) -> bool:
    """Mail the submitter that the submission finished or failed; True when a mail went out now.

    One mail per submission and outcome (a rescore that ends the same way sends none). Nothing is sent
    when the submission has moved on to another status since (a rescore is under way), when the
    submitter opted out, or has no address. Reads the submission, never writes it.
    """
    submission = (Submission.objects.select_related("user", "team", "phase__challenge")
                  .filter(pk=submission_id).first())
    if submission is None or submission.status != status or status not in MAILED_STATUSES:
        return False
    user = submission.user
    if user is None or submission.is_baseline or not selectors.wants(user=user, topic="submissions"):
        return False
    finished = status == Submission.Status.FINISHED
    exact = submissions.submission_access(submission=submission, user=user).exact_scores
    context = {
        "submission": submission, "phase": submission.phase, "challenge": submission.phase.challenge,
        "submission_url": selectors.site_url(reverse("submission", args=[submission.pk])),
        # The failure as the team sees it on the submission page; the crash report stays the organizers'.
        "failure_message": submission.failure_message, "problems": submission.problems[:10],
        "more_problems": max(0, len(submission.problems) - 10),
        "scores": _mailed_scores(submission, exact) if finished else [],
        "ladder_notice": "" if exact else submissions.ladder_notice(phase=submission.phase),
    }
    what = "scored" if finished else "failed"
    subject = f"Submission #{submission.pk} ({submission.method_name}) {what}"
    message = compose(user=user, topic="submissions", subject=subject,
                      template="submission_finished" if finished else "submission_failed", context=context)
    return deliver_once(key=f"submission:{submission.pk}:{status}", kind=Delivery.Kind.SUBMISSION, user=user,
                        message=message, submission=submission)


def _mailed_scores(submission: Submission, exact: bool) -> list[dict[str, object]]:
    """The scores a mail shows, split by split: as its recipient may see them (the Ladder's, while it runs)."""
    shown = submissions.visible_scores(submission=submission, exact_scores=exact)
    return [{"split": split, **values} for split, values in shown.items()]


# --- announcements ---------------------------------------------------------------------------------------


def _may_announce(*, user: AbstractBaseUser, challenge: Challenge) -> None:
    if not organizer_can(user, challenge, Can.MODERATE):
        raise NotAllowed(f"Only the organizers of {challenge.title!r} may send it announcements.")


def announcement_check(*, challenge: Challenge, user: AbstractBaseUser, subject: str, body: str) -> tuple[str, str]:
    """The cleaned subject and body, or ApplicationError (its detail names the field) / NotAllowed."""
    _may_announce(user=user, challenge=challenge)
    subject, body = subject.strip(), body.strip()
    if not subject:
        raise ApplicationError("Give the announcement a subject.", detail={"field": "subject"})
    if len(subject) > SUBJECT_MAX or "\n" in subject or "\r" in subject:
        raise ApplicationError(f"The subject must be one line of at most {SUBJECT_MAX} characters.",
                               detail={"field": "subject"})
    if not body:
        raise ApplicationError("The announcement has no text.", detail={"field": "body"})
    return subject, body


def announcement_create(*, challenge: Challenge, user: AbstractBaseUser, subject: str, body: str) -> Announcement:
    """A new, unsent announcement; NotAllowed unless the user may moderate the challenge."""
    subject, body = announcement_check(challenge=challenge, user=user, subject=subject, body=body)
    return Announcement.objects.create(challenge=challenge, subject=subject, body=body, created_by=user)


def announcement_send(*, announcement: Announcement, user: AbstractBaseUser) -> Announcement:
    """Queue the announcement's mails (once: sending it again is refused); counts its audience now."""
    _may_announce(user=user, challenge=announcement.challenge)
    audience = selectors.announcement_audience(challenge=announcement.challenge)
    with transaction.atomic():
        claimed = Announcement.objects.filter(pk=announcement.pk, queued_at__isnull=True).update(
            queued_at=timezone.now(), recipients=len(audience.recipients), opted_out=audience.opted_out)
        if not claimed:
            raise Conflict(f"The announcement {announcement.subject!r} was sent already.")
        queue.send_on_commit(SEND_ANNOUNCEMENT, announcement.pk)
    announcement.refresh_from_db()
    return announcement


def announcement_deliver(*, announcement_id: int) -> int:
    """Mail a queued announcement to each of its audience who has not had it yet; how many went out now.

    The audience is read again (whoever opted out since is skipped; whoever joined a team since gets it).
    A failed send raises (the task retries): those already mailed are skipped next time.
    """
    announcement = Announcement.objects.select_related("challenge").filter(pk=announcement_id).first()
    if announcement is None or announcement.queued_at is None:
        return 0
    audience = selectors.announcement_audience(challenge=announcement.challenge)
    context = {"announcement": announcement, "challenge": announcement.challenge,
               "body_html": render_markdown(announcement.body),
               "challenge_url": selectors.site_url(reverse("challenge", args=[announcement.challenge.slug]))}
    sent = 0
    for user in audience.recipients:
        message = compose(user=user, topic="announcements", subject=announcement.subject,
                          template="announcement", context=context)
        if deliver_once(key=f"announcement:{announcement.pk}:user:{user.pk}", kind=Delivery.Kind.ANNOUNCEMENT,
                        user=user, message=message, announcement=announcement):
            sent += 1
            Announcement.objects.filter(pk=announcement.pk).update(sent_count=F("sent_count") + 1)
    Announcement.objects.filter(pk=announcement.pk).update(sent_at=timezone.now(),
                                                           opted_out=audience.opted_out)
    return sent


# --- what was not sent ------------------------------------------------------------------------------------


def mail_retry_pending(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Send the mails that a refused send or a lost task left unsent; how many went out now.

    Submissions that finished or failed within MAIL_RETRY_WINDOW seconds (and more than MAIL_RETRY_SECONDS
    ago: their own task may be at work) whose submitter wants the mail and has no Delivery for that outcome,
    then announcements queued in the window and not completely delivered. The first refusal ends the sweep:
    a mail server that is down refuses the rest too, and the next sweep tries again. deliver_once keeps a
    mail that a task sends at the same moment from going out twice.
    """
    now = now or timezone.now()
    since, settled = now - dt.timedelta(seconds=settings.MAIL_RETRY_WINDOW), now - dt.timedelta(
        seconds=settings.MAIL_RETRY_SECONDS)
    keys = Concat(Value("submission:"), Cast("pk", CharField()), Value(":"), F("status"), output_field=CharField())
    unsent = (Submission.objects.filter(status__in=MAILED_STATUSES, is_baseline=False, user__isnull=False,
                                        finished_at__gte=since, finished_at__lte=settled)
              .exclude(user__notification_preferences__submission_mails=False)
              .annotate(mail_key=keys).filter(~Exists(Delivery.objects.filter(key=OuterRef("mail_key"))))
              .order_by("finished_at").values_list("pk", "status")[:limit])
    sent = 0
    try:
        for submission_id, status in unsent:
            sent += submission_mail_send(submission_id=submission_id, status=status)
        for announcement_id in (Announcement.objects.filter(queued_at__gte=since, queued_at__lte=settled,
                                                            sent_at__isnull=True).values_list("pk", flat=True)):
            sent += announcement_deliver(announcement_id=announcement_id)
    except SEND_ERRORS as exc:
        log.warning("the mail server refused a mail (%s: %s); the next sweep tries again", type(exc).__name__, exc)
    return sent
