"""The challenge page (a phase, the viewer's team and quota), leaderboards, the submit form, a team's
submissions and the submission page.

Who may see what is decided by the selectors (board_get, submission_access); what may be done by the
services. These views only translate.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_POST

from leaderboard.accounts.selectors import team_access, team_for
from leaderboard.challenges.models import SPLIT_ORDER
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.challenges.selectors import phase_boards, phase_example_inputs, phase_list
from leaderboard.errors import ApplicationError
from leaderboard.webkit import challenge_or_404, is_xhr, phase_or_404, render_error, safe_next
from scoring import METRICS

from . import admission, board_cache, receipts, selectors, services
from .diagnostics import diagnostics_tables, submission_diagnostics
from .board_html import BOARD_ROWS, board_rows_html, link, mark_team
from .forms import MethodForm, SubmissionForm
from .models import Submission

METRIC_HELP = {
    "T_recall": "Temporal recall: share of the object's frames that got any mask",
    "IoU_all": "Mean IoU over all frames",
    "IoU_gold": "Mean IoU over the frames where the object is",
    "IoU_gold_pred": "Mean IoU over frames where the object is or a mask was predicted",
}


def _metric_values(scores: dict[str, float]) -> list[float | None]:
    return [scores.get(m) for m in METRICS]


def challenge_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A challenge and one of its phases (?phase=, else the first open one), with the viewer's team and quota."""
    challenge = challenge_or_404(request, slug)
    phases = list(phase_list(challenge=challenge))
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
        "splits": phase_boards(phase=phase) if phase else [],
        "team": team,
        "quota": quota,
        "has_example": bool(phase and phase_example_inputs(phase=phase)),
        "can_organize": organizer_can(request.user, challenge, Can.VIEW),
    })


def leaderboard(request: HttpRequest, slug: str, phase_slug: str, split: str) -> HttpResponse:
    challenge, phase = phase_or_404(request, slug, phase_slug, related=board_cache.BOARD)
    splits = phase_boards(phase=phase)
    if split not in splits:
        raise Http404("No such leaderboard.")
    asked = request.GET.get("metric", "")
    metric = asked if asked in METRICS else phase.primary_metric
    team = team_for(user=request.user, challenge=challenge)
    # The rows' HTML is cached per board version and sort, the same for everyone; the viewer's team's row is
    # marked here, and the rest of the page is the viewer's own.
    view = board_cache.board_view(phase=phase, split=split, metric=metric, viewer=request.user, variant="html")
    fragment = board_cache.rendered(view, lambda: _board_rows_html(request, view)) if view.visible else ""
    headers = [{"metric": m, "help": METRIC_HELP.get(m, ""), "current": m == metric,
                "primary": m == phase.primary_metric, "query": f"?metric={m}"} for m in METRICS]
    page = render_to_string("submissions/leaderboard.html", {
        "challenge": challenge, "phase": phase, "split": split, "splits": splits, "visible": view.visible,
        # What a board says when it has no rows to show (private, or nothing scored yet).
        "message": selectors.Leaderboard(phase, split, metric, (), view.visible, phase.reveal_at).message,
        "metric": metric, "headers": headers, "team": team, "has_rows": bool(fragment),
        "query": f"?metric={metric}" if metric != phase.primary_metric else "",
        "is_open": phase.is_open(), "ladder_notice": selectors.ladder_notice(phase=phase),
    }, request)
    # The rows (board_html escapes every value in them) go where the template marks their place: passed
    # through the template, their 300 kB would be copied again at each level of its blocks.
    head, tail = page.split(BOARD_ROWS, 1) if fragment else (page, "")
    rows = mark_team(fragment, team.pk if team else None)
    return HttpResponse(b"".join((head.encode(), rows.encode(), tail.encode())))


def _board_rows_html(request: HttpRequest, view: board_cache.BoardView) -> str:
    """The table rows of a board ("" when it has none), from the materialized board."""
    board = selectors.board_get(phase=view.phase, split=view.split, metric=view.metric, viewer=request.user,
                                now=view.now, include_reported=True)
    return board_rows_html(board.rows, metric=view.metric)


@login_required
def submit(request: HttpRequest, slug: str, phase_slug: str) -> HttpResponse:
    challenge, phase = phase_or_404(request, slug, phase_slug)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    status, error = 200, ""
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                submission = services.submission_create(
                    phase=phase, user=request.user, file=data["file"], method_name=data["method_name"],
                    method_description=data["method_description"], method_url=data["method_url"],
                    code_url=data["code_url"], is_public=data["is_public"],
                )
            except ApplicationError as exc:
                status, error = exc.status, exc.message
            else:
                url = reverse("submission", args=[submission.pk])
                if submission.replayed:
                    messages.info(request, f"You sent this file moments ago: it is submission #{submission.pk}, "
                                  "shown here. It was not submitted a second time.")
                else:
                    messages.success(request, f"Submission #{submission.pk} received. Scoring starts shortly; "
                                     "this page updates by itself.")
                return JsonResponse({"redirect": url}) if is_xhr(request) else redirect(url)
        else:
            status, error = 400, form.first_error()
        if is_xhr(request):
            return JsonResponse({"error": error, "fields": form.errors.get_json_data()}, status=status)
    team = team_for(user=request.user, challenge=challenge)
    now = timezone.now()
    blocked = admission.why_not_now(phase=phase, team=team, now=now, user=request.user)
    participant = admission.participant_refusal(phase=phase, user=request.user) if blocked and team else None
    return render(request, "submissions/submit.html", {
        "challenge": challenge, "phase": phase, "form": form, "team": team,
        # where to go to lift what the submitter must do first (verify an address, accept the terms)
        "blocked_links": participant.detail if participant is not None and participant.message == blocked else {},
        "blocked": blocked, "error": "" if error == blocked else error,  # one sentence, not the same one twice
        "quota": selectors.quota_for(phase=phase, team_id=team.pk, now=now) if team else None,
        "max_bytes": settings.SUBMISSION_MAX_BYTES,
        "part_bytes": settings.UPLOAD_PART_BYTES,
    }, status=status)


@login_required
def my_submissions(request: HttpRequest, slug: str, phase_slug: str) -> HttpResponse:
    challenge, phase = phase_or_404(request, slug, phase_slug)
    team = team_for(user=request.user, challenge=challenge)
    if team is None:
        return render_error(request, "Only team members see their team's submissions, and you are not in a team "
                            f"for {challenge.title}. Create or join one on the challenge page.", status=403)
    rows = []
    # Under the Ladder a scored row shows the team's Ladder score, as status.json does, not its exact one
    # (an organizer's exact view is the submission page's).
    laddered = phase.ladder_active()
    shown = selectors.ladder_scores(phase=phase, team_id=team.pk) if laddered else {}
    for submission in selectors.submission_list(phase=phase, team=team):
        overall = next((s for s in submission.scores.all() if s.split == "overall"), None)
        rows.append({"submission": submission,
                     "primary": None if overall is None else shown.get("overall") if laddered
                     else getattr(overall, phase.primary_metric)})
    return render(request, "submissions/my_submissions.html", {
        "challenge": challenge, "phase": phase, "team": team, "rows": rows, "is_open": phase.is_open(),
        "ladder_notice": selectors.ladder_notice(phase=phase),
        "quota": selectors.quota_for(phase=phase, team_id=team.pk),
    })


def _visible_or_404(request: HttpRequest, submission_id: int) -> tuple[Submission, selectors.Access]:
    """A submission the viewer may see, and what they may do with it; 404 otherwise (existence does not leak)."""
    submission = selectors.submission_get(submission_id=submission_id)
    access = submission and selectors.submission_access(submission=submission, user=request.user)
    if submission is None or not access.view:
        raise Http404("No such submission.")
    return submission, access


def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission, access = _visible_or_404(request, submission_id)
    phase = submission.phase
    intervals = selectors.intervals_by_split(submission=submission)
    videos = [{"video": v, "values": _metric_values(v.scores)}
              for v in selectors.per_video_results(submission=submission)] if access.details else []
    diagnostics = submission_diagnostics(submission=submission, user=request.user, access=access)
    return render(request, "submissions/submission.html", {
        "submission": submission, "phase": phase, "challenge": phase.challenge,
        "metrics": METRICS, "metric_help": METRIC_HELP,
        "scores": [{"split": split, "values": _metric_values(values),
                    "cells": list(zip(_metric_values(values),
                                      [intervals.get(split, {}).get(m) if access.exact_scores else None
                                       for m in METRICS]))}
                   for split, values
                   in selectors.visible_scores(submission=submission, exact_scores=access.exact_scores).items()],
        "has_intervals": bool(intervals) and access.exact_scores,
        "ladder_notice": "" if access.exact_scores else selectors.ladder_notice(phase=phase),
        "access": access,
        # The team's page (its members) is for its members and organizers; others see its name only.
        "team_visible": bool(submission.team and team_access(team=submission.team, user=request.user).view),
        "board_state": _board_state(submission),
        # The team (and its organizers) are told why its rows left the boards.
        "disqualified": selectors.standing_disqualification(phase=phase, team=submission.team)
        if access.diagnostics else None,
        "method_form": MethodForm(initial={"method_name": submission.method_name,
                                           "method_description": submission.method_description,
                                           "method_url": submission.method_url, "code_url": submission.code_url},
                                  auto_id="edit_%s") if access.edit else None,
        "videos": videos,
        # The signed receipt, for whoever may see the exact scores (never while the Ladder hides them).
        "receipt_url": reverse("api-submission-receipt", args=[submission.pk])
        if receipts.receipt_available(submission=submission, access=access) else "",
        # The charts' data (the same JSON as the API's), and their numbers as tables.
        "diagnostics": diagnostics, "diagnostics_tables": diagnostics_tables(diagnostics),
        **(_history(submission) if access.exact_scores else {"history": [], "history_splits": []}),
        "method_href": link(submission.method_url),
        "code_href": link(submission.code_url),
    })


def _history(submission: Submission) -> dict[str, object]:
    """The score history table: the phase's primary metric per split of every attempt that was scored."""
    metric = submission.phase.primary_metric
    history = selectors.score_history(submission=submission)
    splits = [code for code in SPLIT_ORDER if any(code in item.scores for item in history)]
    return {"history_splits": splits,
            "history": [{"set": item, "values": [item.scores.get(code, {}).get(metric) for code in splits]}
                        for item in history]}


def _board_state(submission: Submission) -> str:
    """Where the submission stands with the public board, in words (only a finished one can be on it)."""
    if submission.status in (Submission.Status.FAILED, Submission.Status.CANCELLED):
        return f"not on any board: it {'failed' if submission.status == Submission.Status.FAILED else 'was cancelled'}"
    if not (submission.is_public or submission.is_baseline):
        return "kept off the public board"
    if submission.status != Submission.Status.FINISHED:
        return "shown on the public board once it is scored"
    phase = submission.phase
    if not phase.is_revealed():
        return (f"shown on the public board once it is revealed ({phase.reveal_at:%Y-%m-%d %H:%M} UTC)"
                if phase.reveal_at else "shown on the board when the organizers make it public")
    return "shown on the public board"


@cache_control(public=True, max_age=3600)
def receipt_keys(request: HttpRequest) -> JsonResponse:
    """/.well-known/egomask-receipt-key.json: the public keys that sign score receipts (current first)."""
    return JsonResponse(receipts.published_keys())


@never_cache
def submission_status(request: HttpRequest, submission_id: int) -> JsonResponse:
    submission, access = _visible_or_404(request, submission_id)
    return JsonResponse({
        "id": submission.pk,
        "status": submission.status,
        "status_note": submission.status_note,
        "failure_message": submission.failure_message,
        "scores": selectors.visible_scores(submission=submission, exact_scores=access.exact_scores),
        "ladder": "" if access.exact_scores else selectors.ladder_notice(phase=submission.phase),
        "is_terminal": submission.is_terminal,
    })


@login_required
@require_POST
def submission_cancel(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission, _ = _visible_or_404(request, submission_id)
    try:
        services.submission_cancel(submission=submission, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Submission #{submission.pk} cancelled; it does not use quota.")
    return redirect(safe_next(request, reverse("submission", args=[submission.pk])))


@login_required
@require_POST
def submission_set_public(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission, _ = _visible_or_404(request, submission_id)
    is_public = request.POST.get("is_public", "") in ("1", "true", "on", "yes")
    try:
        services.submission_set_public(submission=submission, user=request.user, is_public=is_public)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Submission #{submission.pk} is now "
                         + ("shown on the public leaderboard." if is_public else "kept off the public leaderboard."))
    return redirect(safe_next(request, reverse("submission", args=[submission.pk])))


@login_required
@require_POST
def submission_edit_method(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The team changes the method's name, description or links."""
    submission, _ = _visible_or_404(request, submission_id)
    form = MethodForm(request.POST)
    back = reverse("submission", args=[submission.pk])
    if not form.is_valid():
        messages.error(request, form.first_error())
        return redirect(back)
    try:
        services.submission_update_method(submission=submission, user=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Submission #{submission.pk}'s method details are saved.")
    return redirect(back)
