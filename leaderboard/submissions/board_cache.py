"""Rendered boards (the JSON, the CSV, the page's rows) in Django's cache, Redis in production.

A board is cached in one slot per (phase, board, sort metric, format, what the viewer is shown: the
rows, or a private board's notice), holding the rendering and the version it renders: the phase's
board version (which each refresh that changes a row bumps: boards.py) with its stamp, and the
reveal time a notice shows. A rendering is used only while that is still what it was made from, so a
bump is the invalidation: nothing cached is ever served for a board that has changed since, nothing
has to be deleted, and a busy phase's many versions do not pile up (each slot holds the latest).

The same identity, hashed, is the ETag of the JSON and the CSV: a client that sends it back in
If-None-Match gets 304 without the rows being read, rendered or even fetched from the cache.

Each process also keeps the renderings it served last in its own memory (LOCAL_CACHE): a board of
a thousand teams is some 300 kB of JSON, and copying it out of Redis for every request costs more than
the rest of the request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.core.cache import cache, caches
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers

from leaderboard.challenges.models import Phase

from .boards import board_current
from .selectors import Viewer, board_is_visible, board_metric

CACHE_SECONDS = 3600  # a slot nobody asks for expires
BOARD = ("board",)  # read the phase's board version in the phase's own query (phase_or_404's `related`)
LOCAL_CACHE = "boards-local"  # settings.CACHES: each process's own copies of the latest renderings
T = TypeVar("T")


@dataclass(frozen=True)
class BoardView:
    """One board as one viewer is served it now: what the rendering depends on, where it is cached
    (`slot`), what it is made from (`source`) and its ETag."""

    phase: Phase
    split: str
    metric: str
    visible: bool
    now: dt.datetime
    slot: str
    source: str
    etag: str

    @property
    def early(self) -> bool:
        """An organizer's view of a private board before its reveal (not for shared caches)."""
        return self.visible and not self.phase.is_revealed(self.now)


def board_view(*, phase: Phase, split: str, metric: str | None, viewer: Viewer | None, variant: str,
               now: dt.datetime | None = None) -> BoardView:
    """The board (phase, split, sorted by metric) as `viewer` sees it, rendered as `variant` (a format).
    Every interface serving a board starts here: one query (the board's version), and the rows only
    when the cached rendering is not of the current version."""
    now = now or timezone.now()
    metric = board_metric(phase=phase, metric=metric)
    visible = board_is_visible(phase=phase, viewer=viewer, now=now)
    version, stamp = board_current(phase=phase)
    slot = f"board:{phase.pk}:{split}:{metric}:{variant}:{'rows' if visible else 'notice'}"
    source = f"{version}:{stamp}" if visible else f"{version}:{stamp}:{phase.reveal_at or '-'}"
    digest = hashlib.sha256(f"{slot}|{source}".encode()).hexdigest()[:16]
    return BoardView(phase, split, metric, visible, now, slot, source, f'"{phase.pk}.{version}.{digest}"')


def not_modified(request: HttpRequest, view: BoardView) -> HttpResponse | None:
    """304 when the client already has this rendering (If-None-Match), else None."""
    response = get_conditional_response(request, etag=view.etag)
    return headers(response, view) if response is not None else None


def rendered(view: BoardView, render: Callable[[], T]) -> T:
    """The cached rendering of the board's current version, or `render()`, stored for the next request.
    Two tiers: this process's memory, then the shared cache."""
    local = caches[LOCAL_CACHE]
    for tier in (local, cache):
        found = tier.get(view.slot)
        if found is not None and found[0] == view.source:
            if tier is not local:
                local.set(view.slot, found, CACHE_SECONDS)
            return found[1]
    entry = (view.source, render())
    cache.set(view.slot, entry, CACHE_SECONDS)
    local.set(view.slot, entry, CACHE_SECONDS)
    return entry[1]


def headers(response: HttpResponse, view: BoardView) -> HttpResponse:
    """The ETag and the caching rules of a board's response: always revalidated, per viewer."""
    response["ETag"] = view.etag
    # An organizer's early view of a private board is theirs alone; shared caches may keep the others.
    patch_cache_control(response, no_cache=True, **({"private": True} if view.early else {}))
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response
