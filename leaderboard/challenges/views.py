"""The home page, the challenge list, what to submit (the format page and each phase's example zip), and
a challenge's terms.
The challenge page (a phase with the viewer's team and quota) is served by the submissions app, which
knows the quotas."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from leaderboard.errors import ApplicationError
from leaderboard.lib.markup import render_markdown
from leaderboard.webkit import challenge_or_404, phase_or_404, safe_next
from scoring.example import example_submission

from . import selectors, terms


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


# --- what to submit: the participant documentation and an example zip per phase ------------------

DOCS = Path(settings.BASE_DIR) / "docs"
PARTICIPANT_PAGES = {"submission-format": "submission-format.md", "metrics": "metrics.md"}
_LINK = re.compile(r"\]\(([a-z-]+)\.md(#[^)]*)?\)")


@functools.cache
def participant_page(name: str) -> SafeString:
    """A page of docs/ as safe HTML for the website: headings one level down (the page has its own
    title), links between the participant pages kept as anchors on the same page."""
    lines, fenced = [], False
    for line in (DOCS / PARTICIPANT_PAGES[name]).read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    text = _LINK.sub(lambda m: f"](#{m.group(1)})" if m.group(1) in PARTICIPANT_PAGES else "](#)", "\n".join(lines))
    return mark_safe(render_markdown(text))  # sanitized by nh3 (leaderboard/lib/markup.py)


def challenge_format(request: HttpRequest, slug: str) -> HttpResponse:
    """/challenges/<slug>/format/: the submission format, the metrics, and an example zip per phase."""
    challenge = challenge_or_404(request, slug)
    phases = [{"phase": p, "example": selectors.phase_example_inputs(phase=p) is not None}
              for p in selectors.phase_list(challenge=challenge)]
    return render(request, "challenges/format.html", {
        "challenge": challenge, "phases": phases,
        "pages": [(name, participant_page(name)) for name in PARTICIPANT_PAGES],
    })


def phase_example(request: HttpRequest, slug: str, phase_slug: str) -> HttpResponse:
    """An example submission for the phase, made from its public inputs only (never the ground truth)."""
    challenge, phase = phase_or_404(request, slug, phase_slug)
    found = selectors.phase_example_inputs(phase=phase)
    if found is None:
        raise Http404("This phase has no checked ground truth yet, so there is no example for it.")
    inputs, splits = found
    response = HttpResponse(example_submission(inputs, splits), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{challenge.slug}-{phase.slug}-example.zip"'
    return response


def challenge_terms(request: HttpRequest, slug: str) -> HttpResponse:
    """The challenge's terms, and for a signed-in user the "I accept" form or the date they accepted."""
    challenge = challenge_or_404(request, slug)
    status, error = 200, ""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.POST.get("accept") != "yes":
            status, error = 400, "Tick “I accept the terms” to accept them."
        else:
            try:
                terms.terms_accept(user=request.user, challenge=challenge,
                                   terms_sha256_seen=request.POST.get("terms_sha256", ""))
            except ApplicationError as exc:
                status, error = exc.status, exc.message
            else:
                messages.success(request, f"You accepted the terms of {challenge.title}.")
                return redirect(safe_next(request, reverse("challenge_terms", args=[challenge.slug])))
    return render(request, "challenges/terms.html", {
        "challenge": challenge, "terms_html": render_markdown(challenge.terms),
        "terms_sha256": terms.terms_sha256(challenge=challenge),
        "acceptance": terms.terms_acceptance(user=request.user, challenge=challenge),
        "error": error, "next": safe_next(request, ""),
    }, status=status)
