"""What the management commands share: who a command acts as.

An organizer's command runs with someone's rights (challenges.permissions checks them inside the services) and
under someone's name (the audit log records it): the user a command names with --as (--user for the older
baseline commands), else the one active superuser, if there is exactly one."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError


def acting_user(username: str | None, *, option: str = "--as") -> AbstractBaseUser:
    """The active user called `username`, else the only active superuser; a CommandError that says which
    option to give when there is no such user or no single superuser."""
    users = get_user_model().objects
    if username:
        user = users.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")  # or not an active one
        return user
    supers = list(users.filter(is_superuser=True, is_active=True)[:2])
    if len(supers) != 1:
        raise CommandError(f"Say who acts (their rights are checked, the audit log names them): {option} USERNAME.")
    return supers[0]
