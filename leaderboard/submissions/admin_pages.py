"""The submission admin's own pages: the readable summary on its change page, the downloads of its files from
private storage, and the moderation buttons (each a POST with a reason to a service of moderation.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from leaderboard.adminkit import ReasonForm
from leaderboard.challenges.models import SPLIT_ORDER
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError, NotAllowed
from scoring import METRICS

from .history import status_history
from .models import Submission
from .moderation import submission_flag, submission_hide, submission_set_baseline
from .selectors import standing_disqualification
from .services import submission_rescore

Moderate = Callable[[Submission, AbstractBaseUser, str], Submission]


@dataclass(frozen=True)
class Moderation:
    """One thing an organizer does to a submission, as a button on its page and as a list action."""

    label: str  # the button's and the action's words
    done: str  # "<n> submissions <done>."
    call: Moderate


MODERATIONS: dict[str, Moderation] = {
    "rescore": Moderation("Rescore (new attempt)", "queued for rescoring",
                          lambda s, by, why: submission_rescore(submission=s, by=by, reason=why)),
    "hide": Moderation("Hide from leaderboards", "hidden from the leaderboards",
                       lambda s, by, why: submission_hide(submission=s, by=by, reason=why)),
    "show": Moderation("Show on leaderboards", "shown on the leaderboards again",
                       lambda s, by, why: submission_hide(submission=s, by=by, reason=why, hidden=False)),
    "flag": Moderation("Flag", "flagged",
                       lambda s, by, why: submission_flag(submission=s, by=by, reason=why)),
    "unflag": Moderation("Remove the flag", "no longer flagged",
                         lambda s, by, why: submission_flag(submission=s, by=by, reason=why, flagged=False)),
    "mark_baseline": Moderation("Mark as baseline", "marked as baseline",
                                lambda s, by, why: submission_set_baseline(submission=s, by=by, reason=why,
                                                                           is_baseline=True)),
    "unmark_baseline": Moderation("Unmark baseline", "no longer marked as baseline",
                                  lambda s, by, why: submission_set_baseline(submission=s, by=by, reason=why,
                                                                             is_baseline=False)),
}


def offered(submission: Submission) -> list[str]:
    """The moderations that make sense for the submission as it is (hide or show, flag or unflag...)."""
    return [what for what, fits in (
        ("rescore", submission.status in (Submission.Status.FINISHED, Submission.Status.FAILED)),
        ("hide", not submission.hidden), ("show", submission.hidden),
        ("flag", not submission.flagged), ("unflag", submission.flagged),
        ("mark_baseline", not submission.is_baseline), ("unmark_baseline", submission.is_baseline),
    ) if fits]


def summary(submission: Submission) -> dict[str, Any]:
    """What the change page shows above the fields: scores per split (two decimals in the template), the
    status history (the audit log), timings, warnings and problems, the failure as the team reads it."""
    scores = sorted(submission.scores.all(), key=lambda s: SPLIT_ORDER.index(s.split)
                    if s.split in SPLIT_ORDER else len(SPLIT_ORDER))
    waited = (submission.started_at - submission.submitted_at).total_seconds() \
        if submission.started_at and submission.started_at >= submission.submitted_at else None
    return {
        "metrics": METRICS,
        "scores": [{"split": s.get_split_display(), "values": [getattr(s, m) for m in METRICS],
                    "n_expressions": s.n_expressions, "versions": f"{s.scorer_version} / {s.gt_version[:12]}"}
                   for s in scores],
        "status_history": status_history(submission=submission),
        "waited_seconds": waited,
        "disqualified": standing_disqualification(phase=submission.phase, team=submission.team),
        "moderations": [(what, MODERATIONS[what].label) for what in offered(submission)],
        "reason_form": ReasonForm(auto_id=False),
    }


def _stream(request: HttpRequest, file: Any, filename: str, content_type: str) -> HttpResponse:
    if not file or not file.name:
        raise Http404("This submission has no such file.")
    # Read from private storage and sent by this process: never a redirect to a public or presigned URL.
    response = FileResponse(file.storage.open(file.name, "rb"), as_attachment=True, filename=filename,
                            content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


def download(request: HttpRequest, submission: Submission, kind: str) -> HttpResponse:
    """The uploaded zip or the per-expression CSV of a submission the user may VIEW (the caller found it in
    the admin's queryset, which the permission rule scopes)."""
    if kind == "upload":
        return _stream(request, submission.file, f"submission-{submission.pk}.zip", "application/zip")
    return _stream(request, submission.details, f"submission-{submission.pk}-per-expression.csv",
                   "text/csv; charset=utf-8")


def moderate(request: HttpRequest, submission: Submission, what: str) -> HttpResponse:
    """A moderation button: POST with a reason; the service checks the user's right (403 without it)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    moderation = MODERATIONS.get(what)
    if moderation is None:
        raise Http404("No such moderation.")
    if not organizer_can(request.user, submission.phase.challenge_id, Can.MODERATE):
        raise PermissionDenied("You may see this submission but not moderate it.")  # a viewer
    back = redirect(reverse("admin:submissions_submission_change", args=[submission.pk]))
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"{moderation.label}: give a reason (it is recorded in the audit log).")
        return back
    try:
        moderation.call(submission, request.user, form.cleaned_data["reason"])
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from None
    except ApplicationError as exc:
        messages.error(request, f"{moderation.label}: {exc.message}")
        return back
    messages.success(request, f"{submission}: {moderation.done}.")
    return back
