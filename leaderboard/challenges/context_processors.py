"""What every page's template needs to know about its viewer as an organizer."""

from __future__ import annotations

from django.http import HttpRequest

from .permissions import organizes_anything


def organizer(request: HttpRequest) -> dict[str, bool]:
    """`organizes`: whether the menu links the admin (staff, or a host of some challenge)."""
    return {"organizes": organizes_anything(getattr(request, "user", None))}
