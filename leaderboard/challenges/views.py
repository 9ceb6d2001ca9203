"""Home and challenge pages, plus the small helpers every web view shares.

Views parse input and call selectors/services; the rules (who sees what, quotas, dates) live there.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from leaderboard.accounts.selectors import team_for

from . import selectors
from .models import SPLIT_ORDER, Challenge, Phase


def render_error(request: HttpRequest, message: str, *, status: int, title: str = "") -> HttpResponse:
    """A page that says in plain words why the action did not happen."""
    titles = {400: "That did not work", 403: "Not allowed", 404: "Not found", 409: "Conflict",
              413: "Too large", 429: "Quota used"}
    return render(request, "error.html", {"title": title or titles.get(status, "Error"), "message": message},
                  status=status)


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The `next` parameter when it points back into this site, else the fallback URL."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return fallback


def challenge_or_404(request: HttpRequest, slug: str) -> Challenge:
    challenge = selectors.challenge_get(slug=slug, viewer=request.user)
    if challenge is None:
        raise Http404("No such challenge.")
    return challenge


def phase_or_404(request: HttpRequest, slug: str, phase_slug: str) -> tuple[Challenge, Phase]:
    challenge = challenge_or_404(request, slug)
    phase = selectors.phase_get(challenge=challenge, slug=phase_slug)
    if phase is None:
        raise Http404("No such phase.")
    return challenge, phase


def split_codes(phase: Phase) -> list[str]:
    """The boards of a phase in display order (all four if the phase has no split rows yet)."""
    return [s.code for s in phase.splits.all()] or list(SPLIT_ORDER)


def home(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    challenges = [
        {"challenge": c, "phases": [{"phase": p, "is_open": p.is_open(now)} for p in c.phases.all()]}
        for c in selectors.challenge_list()
    ]
    return render(request, "challenges/home.html", {"challenges": challenges})


def challenge_detail(request: HttpRequest, slug: str) -> HttpResponse:
    challenge = challenge_or_404(request, slug)
    phases = list(selectors.phase_list(challenge=challenge))
    now = timezone.now()
    wanted = request.GET.get("phase")
    if wanted:
        phase = next((p for p in phases if p.slug == wanted), None)
        if phase is None:
            raise Http404("No such phase.")
    else:  # the first open phase, else the last one (usually the most recent)
        phase = next((p for p in phases if p.is_open(now)), phases[-1] if phases else None)
    team = team_for(user=request.user, challenge=challenge)
    quota = selectors.quota_for(phase=phase, team_id=team.pk, now=now) if phase and team else None
    return render(request, "challenges/challenge.html", {
        "challenge": challenge,
        "phases": [{"phase": p, "is_open": p.is_open(now)} for p in phases],
        "phase": phase,
        "phase_is_open": phase.is_open(now) if phase else False,
        "phase_is_revealed": phase.is_revealed(now) if phase else False,
        "splits": split_codes(phase) if phase else [],
        "team": team,
        "quota": quota,
    })
