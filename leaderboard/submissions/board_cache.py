"""Rendered boards (the JSON, the CSV, the page's rows) in Django's cache, Redis in production.

A rendering is keyed by what it shows: the phase's board version (which each refresh that changes a
row bumps: boards.py), the board, the sort metric, the format, and what the viewer is shown (the rows,
or a private board's notice with its reveal time). A bump is the invalidation: nothing cached is ever
served for a board that has changed since, and nothing has to be deleted (old renderings expire).

The same key, hashed, is the ETag of the JSON and the CSV: a client that sends it back in
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

CACHE_SECONDS = 24 * 3600  # a rendering of a version nobody asks for any more just expires
LOCAL_CACHE = "boards-local"  # settings.CACHES: each process's own copies of the latest renderings
T = TypeVar("T")


@dataclass(frozen=True)
class BoardView:
    """One board as one viewer is served it now: what the rendering depends on, its cache key and ETag."""

    phase: Phase
    split: str
    metric: str
    visible: bool
    now: dt.datetime
    key: str
    etag: str

    @property
    def early(self) -> bool:
        """An organizer's view of a private board before its reveal (not for shared caches)."""
        return self.visible and not self.phase.is_revealed(self.now)


def board_view(*, phase: Phase, split: str, metric: str | None, viewer: Viewer | None, variant: str,
               now: dt.datetime | None = None) -> BoardView:
    """The board (phase, split, sorted by metric) as `viewer` sees it, rendered as `variant` (a format, and
    whatever else that rendering depends on). Every interface serving a board starts here: one query (the
board's version), and the rows only on a cache miss."""
    now = now or timezone.now()
    metric = board_metric(phase=phase, metric=metric)
    visible = board_is_visible(phase=phase, viewer=viewer, now=now)
    version, stamp = board_current(phase=phase)
    reveal = phase.reveal_at.isoformat() if phase.reveal_at else "-"
    key = f"board:{phase.pk}:{version}:{stamp}:{split}:{metric}:{variant}:{'rows' if visible else 'notice:' + reveal}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return BoardView(phase, split, metric, visible, now, key, f'"{phase.pk}.{version}.{digest}"')


def not_modified(request: HttpRequest, view: BoardView) -> HttpResponse | None:
    """304 when the client already has this rendering (If-None-Match), else None."""
    response = get_conditional_response(request, etag=view.etag)
    return headers(response, view) if response is not None else None


def rendered(view: BoardView, render: Callable[[], T]) -> T:
    """The cached rendering, or `render()` stored for the next request. Two tiers: this process's memory
    (a rendering of a key never changes, so a copy cannot go stale), then the shared cache."""
    local = caches[LOCAL_CACHE]
    value = local.get(view.key)
    if value is None:
        value = cache.get(view.key)
        if value is None:
            value = render()
            cache.set(view.key, value, CACHE_SECONDS)
        local.set(view.key, value, CACHE_SECONDS)
    return value


def headers(response: HttpResponse, view: BoardView) -> HttpResponse:
    """The ETag and the caching rules of a board's response: always revalidated, per viewer."""
    response["ETag"] = view.etag
    # An organizer's early view of a private board is theirs alone; shared caches may keep the others.
    patch_cache_control(response, no_cache=True, **({"private": True} if view.early else {}))
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response
