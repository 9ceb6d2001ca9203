"""Small pieces shared by the apps' admin modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest

from leaderboard.errors import ApplicationError


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def apply_each(modeladmin: admin.ModelAdmin, request: HttpRequest, objects: Iterable[Model],
               call: Callable[[Any], object], done: Callable[[int], str]) -> int:
    """Call a service for each selected object; report how many it worked for and why it refused the rest."""
    count = 0
    for obj in objects:
        try:
            call(obj)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        else:
            count += 1
    modeladmin.message_user(request, done(count), messages.SUCCESS if count else messages.WARNING)
    return count


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows rows and changes nothing: the rows are written by services."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.fields or [])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
