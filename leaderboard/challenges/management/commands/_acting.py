"""The `--as USERNAME` argument of the challenge commands: who acts (the audit log's author, whose rights are
checked), by default the only active superuser, as the baselines commands do (baselines/.../_phase_arg.py)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError


def find_actor(username: str | None) -> AbstractBaseUser:
    """The user named by --as, else the only active superuser; one sentence when neither is found."""
    users = get_user_model().objects
    if username:
        user = users.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active user {username!r}.")
        return user
    supers = list(users.filter(is_superuser=True, is_active=True)[:2])
    if len(supers) != 1:
        raise CommandError("Say who acts (their rights are checked, the audit log names them): --as USERNAME.")
    return supers[0]
