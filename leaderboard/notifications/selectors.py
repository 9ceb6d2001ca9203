"""Reads: a user's notification choices, who gets an announcement, the signed unsubscribe links."""

from __future__ import annotations

import dataclasses
from typing import Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db.models import QuerySet
from django.urls import reverse

from leaderboard.accounts.models import Membership
from leaderboard.challenges.models import Challenge

from .models import Preferences

Topic = Literal["submissions", "announcements"]
TOPICS: dict[str, str] = {"submissions": "submission_mails", "announcements": "announcement_mails"}
_UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def preferences_for(*, user: AbstractBaseUser) -> Preferences:
    """The user's choices (an unsaved row with the defaults when they never chose)."""
    return Preferences.objects.filter(user=user).first() or Preferences(user=user)


def wants(*, user: AbstractBaseUser, topic: Topic) -> bool:
    """Whether the user takes mail on `topic` (an inactive user or one without an address takes none)."""
    if not user.is_active or not user.email:
        return False
    return bool(getattr(preferences_for(user=user), TOPICS[topic]))


@dataclasses.dataclass(frozen=True)
class Audience:
    recipients: list[AbstractBaseUser]
    opted_out: int


def announcement_audience(*, challenge: Challenge) -> Audience:
    """Every active member with an address of every team of the challenge, less those who opted out."""
    members: QuerySet = (get_user_model().objects.filter(
        pk__in=Membership.objects.filter(challenge=challenge).values("user_id"), is_active=True)
        .exclude(email="").order_by("pk"))
    out = set(Preferences.objects.filter(user__in=members, announcement_mails=False).values_list("user_id", flat=True))
    return Audience(recipients=[user for user in members if user.pk not in out], opted_out=len(out))


def unsubscribe_token(*, user: AbstractBaseUser, topic: Topic) -> str:
    """A signed token that turns `topic` off for this user, without a login (it never expires: old mails work)."""
    return signing.dumps({"u": user.pk, "t": topic}, salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(*, user: AbstractBaseUser, topic: Topic) -> str:
    return settings.SITE_URL + reverse("notification_unsubscribe", args=[unsubscribe_token(user=user, topic=topic)])


def unsubscribe_target(*, token: str) -> tuple[AbstractBaseUser, Topic] | None:
    """The user and topic a token names, or None for a forged, damaged or stale (user gone) one."""
    try:
        data = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("t") not in TOPICS:
        return None
    user = get_user_model().objects.filter(pk=data.get("u")).first()
    return (user, data["t"]) if user is not None else None


def site_url(path: str) -> str:
    """An absolute link for a mail (sent by a worker, so no request to build it from)."""
    return settings.SITE_URL + path
