"""Celery tasks (the `maintenance` queue): thin. Each calls a service and retries, with backoff, when the
mail server fails; a mail never touches the submission it is about."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from . import services
from .mail import SEND_ERRORS

log = logging.getLogger(__name__)


def _backoff(retries: int) -> int:
    return settings.MAIL_RETRY_SECONDS * 2**retries


@shared_task(bind=True, name=services.SEND_SUBMISSION_MAIL, acks_late=True, max_retries=settings.MAIL_MAX_RETRIES)
def send_submission_mail(self, submission_id: int, status: str) -> None:  # type: ignore[no-untyped-def]
    try:
        services.submission_mail_send(submission_id=submission_id, status=status)
    except SEND_ERRORS as exc:
        log.warning("could not mail submission %s (%s: %s); retrying", submission_id, type(exc).__name__, exc)
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None


@shared_task(bind=True, name=services.SEND_ANNOUNCEMENT, acks_late=True, max_retries=settings.MAIL_MAX_RETRIES)
def send_announcement(self, announcement_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        services.announcement_deliver(announcement_id=announcement_id)
    except SEND_ERRORS as exc:
        log.warning("could not mail announcement %s (%s: %s); retrying", announcement_id, type(exc).__name__, exc)
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
