"""The board snapshots' public pages (snapshots.py makes them): the list with what to cite, each snapshot's JSON
and CSV at a stable address, and the newest one's address. Who may read them is snapshots.snapshots_visible;
a snapshot never changes, so its files are sent with their sha256 as ETag and cached for a year."""

from __future__ import annotations

import hashlib

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers

from leaderboard.challenges.models import Phase
from leaderboard.challenges.selectors import phase_boards
from leaderboard.webkit import phase_or_404

from . import snapshots
from .models import BoardSnapshot

YEAR = 365 * 24 * 3600


def _readable_phase(request: HttpRequest, slug: str, phase_slug: str) -> tuple[Phase, bool]:
    """The phase and whether the viewer may read its snapshots (404 for a phase they may not see)."""
    _, phase = phase_or_404(request, slug, phase_slug)
    return phase, snapshots.snapshots_visible(phase=phase, viewer=request.user)


def _snapshot_or_404(request: HttpRequest, slug: str, phase_slug: str, number: int) -> tuple[Phase, BoardSnapshot]:
    phase, readable = _readable_phase(request, slug, phase_slug)
    snapshot = snapshots.snapshot_get(phase=phase, number=number) if readable else None
    if snapshot is None:
        raise Http404("No such snapshot.")
    return phase, snapshot


def board_snapshots(request: HttpRequest, slug: str, phase_slug: str) -> HttpResponse:
    """The phase's snapshots, newest first, each with its title, address, sha256 and date to cite."""
    phase, readable = _readable_phase(request, slug, phase_slug)
    items = []
    for snapshot in snapshots.snapshot_list(phase=phase) if readable else []:
        items.append({"snapshot": snapshot, "title": snapshots.snapshot_title(phase=phase, snapshot=snapshot),
                      "url": snapshots.snapshot_url(phase=phase, number=snapshot.number),
                      "csv_url": snapshots.snapshot_url(phase=phase, number=snapshot.number, suffix="csv"),
                      "key": f"{phase.challenge.slug}-{phase.slug}-snapshot-{snapshot.number}"})
    now = timezone.now()
    refusal = snapshots.snapshot_refusal(phase=phase, now=now)
    return render(request, "submissions/snapshots.html", {
        "challenge": phase.challenge, "phase": phase, "items": items, "readable": readable,
        "public": snapshots.snapshots_public(phase=phase, now=now), "refusal": refusal,
        "first_split": next(iter(phase_boards(phase=phase)), None),
    })


def _immutable(request: HttpRequest, phase: Phase, body: bytes, etag: str, content_type: str,
               filename: str) -> HttpResponse:
    """A snapshot's file: 304 when the client has it; kept a year by any cache while the board is public, by the
    viewer's own cache only while it is not (an organizer's early look)."""
    tag = f'"{etag}"'
    asked = [item.strip() for item in request.headers.get("If-None-Match", "").split(",")]
    response = HttpResponseNotModified() if tag in asked or "*" in asked else HttpResponse(body,
                                                                                         content_type=content_type)
    response["ETag"] = tag
    if snapshots.snapshots_public(phase=phase):
        patch_cache_control(response, public=True, max_age=YEAR, immutable=True)
    else:
        patch_cache_control(response, private=True, no_cache=True)
        patch_vary_headers(response, ("Cookie",))
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def board_snapshot_json(request: HttpRequest, slug: str, phase_slug: str, number: int) -> HttpResponse:
    phase, snapshot = _snapshot_or_404(request, slug, phase_slug, number)
    return _immutable(request, phase, snapshot.content.encode("utf-8"), snapshot.sha256, "application/json",
                      f"{slug}-{phase_slug}-snapshot-{number}.json")


def board_snapshot_csv(request: HttpRequest, slug: str, phase_slug: str, number: int) -> HttpResponse:
    phase, snapshot = _snapshot_or_404(request, slug, phase_slug, number)
    body = snapshot.csv.encode("utf-8")
    return _immutable(request, phase, body, hashlib.sha256(body).hexdigest(), "text/csv; charset=utf-8",
                      f"{slug}-{phase_slug}-snapshot-{number}.csv")


def board_snapshot_latest(request: HttpRequest, slug: str, phase_slug: str) -> HttpResponse:
    """A redirect to the newest snapshot's JSON (the address to cite is that one: it never changes)."""
    phase, readable = _readable_phase(request, slug, phase_slug)
    number = snapshots.snapshot_latest_number(phase=phase) if readable else None
    if number is None:
        raise Http404("This phase has no snapshot.")
    response = HttpResponseRedirect(snapshots.snapshot_path(phase=phase, number=number))
    patch_cache_control(response, no_cache=True)
    return response
