"""The admin's audit log pages: one per challenge, filterable, and its CSV export (streamed). Whoever may VIEW
the challenge reads them (permissions.organizer_can); to anyone else the challenge does not exist (404)."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse

from leaderboard.audit import KINDS, audit_csv_lines, audit_entries
from leaderboard.challenges.models import Challenge
from leaderboard.challenges.permissions import Can, organizer_can

PER_PAGE = 200


def _challenge(request: HttpRequest, challenge_id: int) -> Challenge:
    challenge = Challenge.objects.filter(pk=challenge_id).first()
    if challenge is None or not organizer_can(request.user, challenge, Can.VIEW):
        raise Http404("No such challenge.")
    return challenge


def _filters(request: HttpRequest) -> dict[str, object]:
    kind = request.GET.get("kind", "")
    raw_object = request.GET.get("object", "")
    return {"kind": kind if kind in KINDS else "", "user": request.GET.get("user", "").strip()[:150],
            "object_id": int(raw_object) if raw_object.isdigit() else None}


def audit_page(site: admin.AdminSite, request: HttpRequest, challenge_id: int) -> HttpResponse:
    """The challenge's audit log, newest first, PER_PAGE entries a page."""
    challenge = _challenge(request, challenge_id)
    filters = _filters(request)
    page = Paginator(audit_entries(challenge=challenge, **filters), PER_PAGE).get_page(request.GET.get("p"))
    query = request.GET.copy()
    query.pop("p", None)
    context = {**site.each_context(request), "title": f"Audit log: {challenge.title}", "challenge": challenge,
               "page": page, "kinds": list(KINDS), "filters": filters, "query": query.urlencode()}
    return TemplateResponse(request, "admin/audit_log.html", context)


def audit_csv(site: admin.AdminSite, request: HttpRequest, challenge_id: int) -> HttpResponse:
    """The same entries (filters included), whole values, as a streamed CSV download."""
    challenge = _challenge(request, challenge_id)
    entries = audit_entries(challenge=challenge, limit=None, **_filters(request))
    response = StreamingHttpResponse(audit_csv_lines(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{challenge.slug}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
