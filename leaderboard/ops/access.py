"""Who is an operator: the one rule for what the health details and the metrics show.

Operators run the site, which is a different question from organizing a challenge (challenges.permissions
answers that one): a staff account, or a monitor presenting METRICS_TOKEN as a bearer token. Internal host
names, worker lists and error messages are theirs only.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest


def has_metrics_token(request: HttpRequest) -> bool:
    """The request carries `Authorization: Bearer <METRICS_TOKEN>` (never true while no token is set)."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def is_operator(*, request: HttpRequest, user: AbstractBaseUser | AnonymousUser) -> bool:
    """A site operator: the monitoring token, or a signed-in staff account (`user`, read by the caller:
    an async view reads it with `await request.auser()`)."""
    return has_metrics_token(request) or bool(user.is_authenticated and user.is_staff)
