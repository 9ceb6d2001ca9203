"""The organizer dashboard page, /challenges/<slug>/organize/ (dashboard.py reads what it shows). Its
challenge's organizers only (viewers included); to anyone else the challenge is answered as missing."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe

from leaderboard.challenges import selectors as challenge_selectors
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.lib.svgchart import Series, stacked_bars

from .dashboard import Section, challenge_dashboard
from .exports import EXPORTS

COLORS = {"finished": "#2e7d32", "failed": "#c62828", "other": "#9e9e9e"}


def _chart(section: Section, title: str) -> str:
    series = [Series("finished", COLORS["finished"], tuple(section.finished)),
              Series("failed", COLORS["failed"], tuple(section.failed)),
              Series("active or cancelled", COLORS["other"], tuple(section.other))]
    # stacked_bars escapes every text it writes.
    return mark_safe(stacked_bars(days=section.days, series=series, title=title))  # noqa: S308


def _exports(phase_id: int) -> list[tuple[str, str]]:
    return [(name, reverse(f"api-export-{name.replace('.', '-')}", args=[phase_id])) for name in EXPORTS]


@login_required
def organize(request: HttpRequest, slug: str) -> HttpResponse:
    """The dashboard: submissions per day, failures by reason, stuck and slow submissions, teams and quotas."""
    challenge = challenge_selectors.challenge_get(slug=slug, viewer=request.user)
    if challenge is None or not organizer_can(request.user, challenge, Can.VIEW):
        raise Http404("No such challenge.")
    dashboard = challenge_dashboard(challenge=challenge)
    phases = [{"section": section, "phase": section.phase, "exports": _exports(section.phase.pk),
               "chart": _chart(section, f"Submissions per day to {section.phase.name} ({dashboard.time_zone})")}
              for section in dashboard.phases]
    return render(request, "submissions/organize.html", {
        "challenge": challenge, "dashboard": dashboard, "phases": phases,
        "overall_chart": _chart(dashboard.overall, f"Submissions per day to {challenge.title} "
                                f"({dashboard.time_zone})"),
        # The public status page is the operations side's (/challenges/<slug>/status/).
        "status_page": f"/challenges/{challenge.slug}/status/",
    })
