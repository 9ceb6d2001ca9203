"""Composing a mail and sending it at most once.

Every mail carries an unsubscribe link for its topic and the List-Unsubscribe headers (RFC 2369 and the
one-click POST of RFC 8058), goes to one address (nobody sees another recipient), and is recorded as a
Delivery under a key saying what it is about. The row is inserted in the transaction that sends: a send
that fails rolls it back (the task's retry sends again), and a second send of the same key waits on the
first one's insert and then finds it (a redelivered task sends nothing).
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from .models import Delivery
from .selectors import Topic, site_url, unsubscribe_url

#: What a task retries on: the mail server refused or could not be reached.
SEND_ERRORS: tuple[type[BaseException], ...] = (smtplib.SMTPException, OSError)


def compose(*, user: AbstractBaseUser, topic: Topic, subject: str, template: str,
            context: dict[str, Any]) -> EmailMultiAlternatives:
    """The mail `template` (.txt and .html under templates/notifications/) to the user's address."""
    unsubscribe = unsubscribe_url(user=user, topic=topic)
    context = {**context, "user": user, "unsubscribe_url": unsubscribe,
               "settings_url": site_url(reverse("notification_settings")), "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
        body=render_to_string(f"notifications/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email],
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                 "Auto-Submitted": "auto-generated"})
    message.attach_alternative(render_to_string(f"notifications/{template}.html", context), "text/html")
    return message


def deliver_once(*, key: str, kind: str, user: AbstractBaseUser, message: EmailMultiAlternatives,
                 **about: Any) -> bool:
    """Send `message` unless a mail with this key was sent already; True when it went out now.

    Raises what the mail backend raises (SEND_ERRORS: the caller's task retries), recording nothing.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                Delivery.objects.create(key=key, kind=kind, user=user, to=message.to[0],
                                        subject=message.subject[:250], **about)
        except IntegrityError:
            return False  # sent before: a redelivered or retried task
        message.send(fail_silently=False)
    return True
