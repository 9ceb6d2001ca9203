"""Input parsing and the JSON shapes the evalai CLI (1.3.18) reads, built from our models.

Field names are EvalAI's where the CLI reads them (see evalai/utils/*.py in its source); fields
of our own are added beside them. What the CLI needs that our models do not have is filled in
plainly and written down here:

- Dates are UTC strings ending in Z (the CLI parses only "%Y-%m-%dT%H:%M:%S[.%f]Z"), and the CLI
  cannot print a missing one: a phase without a start shows its creation time, one without an end
  shows OPEN_END. A challenge spans its phases.
- Statuses are ours (submitted, validating, scoring, finished, failed, cancelled).
- A board's `visibility` is EvalAI's 3 (public) once the phase's board is revealed, else 1 (host
  only); the CLI lists only the public ones.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.urls import reverse
from django.utils.text import Truncator
from rest_framework import serializers
from rest_framework.request import Request

from leaderboard.challenges.models import Challenge, Phase, PhaseSplit
from leaderboard.submissions.models import Submission
from leaderboard.submissions.selectors import Leaderboard, ladder_notice, visible_scores
from scoring import METRICS

# The CLI prints every date and cannot print a missing one. Far enough to read as "no end", and
# still a valid date after the CLI moves it to a local time zone (year 9999 + 14 hours).
OPEN_END = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
DECIMALS = 2  # the board's `result` values; `scores` keeps full precision
VISIBILITY_HOST, VISIBILITY_PUBLIC = 1, 3  # EvalAI's ChallengePhaseSplit.visibility values
ORGANIZERS = "Organizers"


def utc(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def page(results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """EvalAI's paginated envelope; everything fits on one page here."""
    return {"count": len(results), "next": None, "previous": None, "results": results, **extra}


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value  # JSON has no NaN


# --- challenges and phases ------------------------------------------------------------------------


def _phase_dates(phase: Phase) -> tuple[dt.datetime, dt.datetime]:
    return phase.starts_at or phase.created_at, phase.ends_at or OPEN_END


def challenge_json(challenge: Challenge, request: Request) -> dict[str, Any]:
    phases = list(challenge.phases.all())
    spans = [_phase_dates(p) for p in phases]
    page_url = request.build_absolute_uri(reverse("challenge", args=[challenge.slug]))
    return {
        "id": challenge.pk,
        "slug": challenge.slug,
        "title": challenge.title,
        "short_description": Truncator(challenge.description.strip().split("\n", 1)[0]).chars(200),
        "description": challenge.description,
        "creator": {"id": None, "team_name": ORGANIZERS},
        "start_date": utc(min((s for s, _ in spans), default=challenge.created_at)),
        "end_date": utc(max((e for _, e in spans), default=OPEN_END)),
        "published": challenge.is_published,
        "approved_by_admin": True,
        "is_active": any(p.is_open() for p in phases),
        "submission_guidelines": "Upload one zip of the prediction folders (short, medium, long); check it first "
                                 f"with `egomask validate --pred FILE`. Teams are made on the website: {page_url}",
        "evaluation_details": f"Four metrics per split, in percent: {', '.join(METRICS)}. Each phase ranks by its "
                              "primary metric; `evalai challenge C phase P` shows it.",
        "terms_and_conditions": "",
        "url": page_url,
    }


def phase_json(phase: Phase) -> dict[str, Any]:
    start, end = _phase_dates(phase)
    return {
        "id": phase.pk,
        "name": phase.name,
        "codename": phase.slug,
        "slug": phase.slug,
        "description": phase.description,
        "challenge": phase.challenge_id,
        "start_date": utc(start),
        "end_date": utc(end),
        "is_active": phase.is_open(),
        "is_public": True,
        "leaderboard_public": phase.is_revealed(),
        "max_submissions_per_day": phase.max_per_day,  # null: no limit
        "max_submissions": phase.max_total,
        "max_submissions_per_month": None,
        "allowed_submission_file_types": ".zip",
        "submission_meta_attributes": None,  # the CLI then asks only for the method details
        "accepts_submissions": phase.accepts_submissions,
        "visibility": phase.visibility,
        "reveal_at": utc(phase.reveal_at),
        "ranking_rule": phase.ranking_rule,
        "primary_metric": phase.primary_metric,
    }


def phase_split_json(split: PhaseSplit) -> dict[str, Any]:
    phase = split.phase
    return {
        "id": split.pk,
        "challenge_phase": phase.pk,
        "challenge_phase_name": phase.name,
        "dataset_split_name": split.code,
        "dataset_split_codename": split.code,
        "visibility": VISIBILITY_PUBLIC if phase.is_revealed() else VISIBILITY_HOST,
        "show_leaderboard_by_latest_submission": phase.ranking_rule == Phase.Rule.LATEST,
        "leaderboard_decimal_precision": DECIMALS,
        "is_leaderboard_order_descending": True,
        "primary_metric": phase.primary_metric,
    }


# --- submissions ------------------------------------------------------------------------------------


def submission_json(submission: Submission, *, full: bool, result_url: str | None,
                    exact: bool = True) -> dict[str, Any]:
    """`full` for the submitting team and organizers: timings, failure reason, problems, warnings. `exact`: the
    caller's Access.exact_scores (false: the team's Ladder score only, and `ladder` says why)."""
    team = submission.team
    data: dict[str, Any] = {
        "id": submission.pk,
        "participant_team": submission.team_id,
        "participant_team_name": team.name if team else "Baseline" if submission.is_baseline else "",
        "challenge_phase": submission.phase_id,
        "status": submission.status,
        "submitted_at": utc(submission.submitted_at),
        "execution_time": submission.scoring_seconds if full else None,
        "method_name": submission.method_name,
        "method_description": submission.method_description,
        "publication_url": submission.method_url,
        "project_url": submission.code_url,
        "is_public": submission.is_public,
        "is_baseline": submission.is_baseline,
        "input_file": None,  # private storage: never handed out
        "stdout_file": None,
        "stderr_file": None,
        "submission_result_file": result_url,
        "scores": {split: {m: _number(v) for m, v in values.items()}
                   for split, values in visible_scores(submission=submission, exact_scores=exact).items()},
    }
    if not exact:
        data["ladder"] = ladder_notice(phase=submission.phase)
    if full:
        data.update({
            "started_at": utc(submission.started_at),
            "completed_at": utc(submission.finished_at),
            "failure_message": submission.failure_message,
            "problems": submission.problems,
            "warnings": submission.warnings,
        })
    return data


def submission_result(submission: Submission, *, full: bool, exact: bool = True) -> dict[str, Any]:
    """What `evalai submission S result` prints (the body behind `submission_result_file`)."""
    data = submission_json(submission, full=full, result_url=None, exact=exact)
    keep = ["id", "status", "method_name", "participant_team_name", "submitted_at", "scores", "ladder"]
    if full:
        keep += ["execution_time", "failure_message", "problems", "warnings"]
    return {key: data[key] for key in keep if key in data}  # `ladder` only under the Ladder


# --- leaderboards -----------------------------------------------------------------------------------


def leaderboard_json(board: Leaderboard, split: PhaseSplit) -> dict[str, Any]:
    schema = {"labels": list(METRICS), "default_order_by": board.phase.primary_metric}
    results = []
    for row in board.rows:
        scores = {m: _number(row.scores.get(m)) for m in METRICS}
        results.append({
            "id": row.submission_id,
            "rank": row.rank,  # the server's (ties share one, baselines take none); the CLI numbers rows itself
            "submission__id": row.submission_id,
            # The CLI shows only this name and numbers the rows itself: say which row is an unranked baseline.
            "submission__participant_team__team_name": f"Baseline: {row.method}" if row.is_baseline else row.team,
            "submission__participant_team": row.team_id,
            "submission__method_name": row.method,
            "submission__publication_url": row.method_url,
            "submission__project_url": row.code_url,
            "submission__is_baseline": row.is_baseline,
            "submission__submitted_at": utc(row.submitted_at),
            "challenge_phase_split": split.pk,
            "leaderboard__schema": schema,
            "result": [None if v is None else round(v, DECIMALS) for v in scores.values()],
            "scores": scores,
            "n_expressions": row.n_expressions,
            "filtering_score": scores.get(board.metric),
            "error": None,
        })
    return page(results, metric=board.metric, message=board.message)


# --- input ------------------------------------------------------------------------------------------


class _Flag(serializers.BooleanField):
    default_empty_html = serializers.empty  # absent from a form means the default, not False


class MethodInput(serializers.Serializer):
    """The method details the CLI sends when the user answers yes to "include the Submission Details"."""

    method_name = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=True)
    method_description = serializers.CharField(required=False, allow_blank=True, default="")
    publication_url = serializers.CharField(required=False, allow_blank=True, default="")
    project_url = serializers.CharField(required=False, allow_blank=True, default="")
    is_public = _Flag(required=False, default=True)  # the CLI sends "true"/"false" or nothing


class LargeStartInput(MethodInput):
    file_name = serializers.CharField(required=False, allow_blank=True, default="")
    num_file_chunks = serializers.IntegerField()


class FinishInput(serializers.Serializer):
    upload_id = serializers.CharField()
    parts = serializers.JSONField(required=False, default=None)

    def validate_parts(self, value: Any) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(p, dict) and isinstance(p.get("PartNumber"), int) and isinstance(p.get("ETag"), str)
            for p in value
        ):
            raise serializers.ValidationError('Send a list of {"PartNumber": n, "ETag": "..."}.')
        return value
