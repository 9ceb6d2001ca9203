"""Small pieces shared by the apps' web views (the API's are in api_support, the admin's in adminkit)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from leaderboard.challenges import selectors as challenge_selectors
from leaderboard.challenges.models import Challenge, Phase

ERROR_TITLES = {400: "That did not work", 403: "Not allowed", 404: "Not found", 409: "Conflict", 413: "Too large",
                429: "Quota used"}


def render_error(request: HttpRequest, message: str, *, status: int, title: str = "") -> HttpResponse:
    """A page that says in plain words why the action did not happen."""
    return render(request, "error.html", {"title": title or ERROR_TITLES.get(status, "Error"), "message": message},
                  status=status)


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The `next` parameter when it points back into this site, else the fallback URL."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return fallback


def is_xhr(request: HttpRequest) -> bool:
    """The page's own JavaScript asked (it wants JSON back, not a page)."""
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def challenge_or_404(request: HttpRequest, slug: str) -> Challenge:
    """The challenge named in the URL, if the viewer may see it (an unpublished one: organizers only)."""
    challenge = challenge_selectors.challenge_get(slug=slug, viewer=request.user)
    if challenge is None:
        raise Http404("No such challenge.")
    return challenge


def phase_or_404(request: HttpRequest, slug: str, phase_slug: str,
                 related: tuple[str, ...] = ()) -> tuple[Challenge, Phase]:
    """The challenge and phase named by their slugs in a page's URL; 404 if the viewer may not see them.
    `related`: one-to-one relations of the phase read in the same query."""
    challenge = challenge_or_404(request, slug)
    phase = challenge_selectors.phase_get(challenge=challenge, slug=phase_slug, related=related)
    if phase is None:
        raise Http404("No such phase.")
    return challenge, phase
