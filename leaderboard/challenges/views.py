"""The home page and the challenge list. The challenge page (a phase with the viewer's team and quota)
is served by the submissions app, which knows the quotas."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from . import selectors


def _listing(request: HttpRequest, template: str) -> HttpResponse:
    now = timezone.now()
    challenges = [
        {"challenge": c, "phases": [{"phase": p, "is_open": p.is_open(now)} for p in c.phases.all()]}
        for c in selectors.challenge_list()
    ]
    return render(request, template, {"challenges": challenges})


def home(request: HttpRequest) -> HttpResponse:
    return _listing(request, "challenges/home.html")


def challenge_list(request: HttpRequest) -> HttpResponse:
    """/challenges/: the published challenges and their phases (the home page without its introduction)."""
    return _listing(request, "challenges/challenge_list.html")
