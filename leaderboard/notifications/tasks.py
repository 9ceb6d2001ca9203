"""Celery tasks (the `maintenance` queue): thin. Each calls a service; a mail never touches the submission it
is about.

A mail the server refuses is not retried by the task (a retry with a countdown would sit unacknowledged in the
maintenance worker, and kombu's Redis transport crashes a worker that holds one when the broker goes away):
the sweep, `retry_mail`, sends whatever was not sent, as it does for a task that was never delivered."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from . import services
from .mail import SEND_ERRORS

log = logging.getLogger(__name__)


def _later(what: str, exc: BaseException) -> None:
    log.warning("could not mail %s (%s: %s); the mail sweep tries again within %s s", what, type(exc).__name__, exc,
                settings.MAIL_RETRY_SECONDS)


@shared_task(name=services.SEND_SUBMISSION_MAIL, acks_late=True)
def send_submission_mail(submission_id: int, status: str) -> None:
    try:
        services.submission_mail_send(submission_id=submission_id, status=status)
    except SEND_ERRORS as exc:
        _later(f"submission {submission_id}", exc)


@shared_task(name=services.SEND_ANNOUNCEMENT, acks_late=True)
def send_announcement(announcement_id: int) -> None:
    try:
        services.announcement_deliver(announcement_id=announcement_id)
    except SEND_ERRORS as exc:
        _later(f"announcement {announcement_id}", exc)


@shared_task(name=services.RETRY_MAIL, acks_late=True)
def retry_mail() -> None:
    """Beat, every MAIL_RETRY_SECONDS: send what a refused or lost task did not (services.mail_retry_pending)."""
    services.mail_retry_pending()
