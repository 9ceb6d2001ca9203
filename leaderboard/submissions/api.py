"""API classes for submissions and leaderboards: each parses input, calls a service or selector, shapes
output. Who may see or do what is decided by selectors.submission_access, never here. Large uploads:
api_uploads.py; challenges and phases (with the caller's quota): api_phases.py."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from leaderboard.accounts.selectors import team_for
from leaderboard.api_support import SubmitThrottle, error_responses, phase_or_404
from leaderboard.challenges.models import SPLIT_ORDER
from leaderboard.challenges.selectors import phase_boards
from leaderboard.errors import ApplicationError, NotAllowed, NotFound, TooLarge
from leaderboard.lib.spreadsheet import spreadsheet_safe
from scoring import METRICS

from . import board_cache, receipts, selectors, services
from .board_cache import BOARD
from .models import FailureKind, Submission

# --- submissions ------------------------------------------------------------------------------


class MetricsOutput(serializers.Serializer):
    """Percent; under the Ladder only the primary metric has a value (the team's Ladder score), the others null."""

    T_recall = serializers.FloatField(help_text="percent", allow_null=True)
    IoU_all = serializers.FloatField(help_text="percent", allow_null=True)
    IoU_gold = serializers.FloatField(help_text="percent", allow_null=True)
    IoU_gold_pred = serializers.FloatField(help_text="percent", allow_null=True)


class ScoresOutput(serializers.Serializer):
    """The four metrics per board; a board is missing until the submission is scored."""

    short = MetricsOutput(required=False)
    medium = MetricsOutput(required=False)
    long = MetricsOutput(required=False)
    overall = MetricsOutput(required=False)


def _intervals_field() -> serializers.DictField:
    return serializers.DictField(child=serializers.ListField(child=serializers.FloatField(), min_length=2,
                                                             max_length=2), required=False)


class IntervalsOutput(serializers.Serializer):
    """Per board, the 95% interval of each metric in percent, {metric: [low, high]} (cluster bootstrap over
    videos, computed when scored); a board is missing when it has too few videos for one."""

    short = _intervals_field()
    medium = _intervals_field()
    long = _intervals_field()
    overall = _intervals_field()


class SubmissionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    phase = serializers.IntegerField(source="phase_id")
    team = serializers.IntegerField(source="team_id", allow_null=True, help_text="null for a baseline")
    team_name = serializers.CharField(source="team.name", allow_null=True)
    method_name = serializers.CharField()
    method_description = serializers.CharField()
    method_url = serializers.CharField()
    code_url = serializers.CharField()
    status = serializers.ChoiceField(choices=Submission.Status.choices)
    is_public = serializers.BooleanField()
    is_baseline = serializers.BooleanField()
    status_note = serializers.CharField(help_text="what an active submission is doing beyond its status, e.g. "
                                        "\"Retrying after a worker stopped (attempt 2).\"; empty otherwise")
    failure_message = serializers.CharField(help_text="why it failed, in plain words; empty otherwise")
    failure_kind = serializers.ChoiceField(choices=FailureKind.choices, allow_blank=True,
                                           help_text="invalid: the file has problems; crashed: the file stopped "
                                           "the scorer (counts against quota); internal: an error on our side")
    problems = serializers.ListField(child=serializers.DictField(), help_text="what made it fail (team only)")
    warnings = serializers.ListField(child=serializers.DictField(), help_text="scored, but look (team only)")
    flagged = serializers.BooleanField(help_text="flagged by the organizers: on the boards, marked")
    flag_reason = serializers.CharField(help_text="why it is flagged, in the organizers' words (team only)")
    hidden_reason = serializers.CharField(help_text="why the organizers hide it from the boards (team only); "
                                          "empty when it is not hidden")
    attempt = serializers.IntegerField()
    submitted_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    scorer_version = serializers.CharField()
    gt_version = serializers.CharField()
    scores = serializers.SerializerMethodField()
    ci = serializers.SerializerMethodField()
    ladder = serializers.SerializerMethodField()

    def _access(self, submission: Submission) -> selectors.Access:
        """What the caller may see of it: the context's `access`, else asked for the context's `user`."""
        access = self.context.get("access")
        if access is None:
            access = selectors.submission_access(submission=submission, user=self.context["user"])
        return access

    @extend_schema_field(ScoresOutput)
    def get_scores(self, submission: Submission) -> dict[str, dict[str, float | None]]:
        """Exact, or while the phase runs the Ladder (for anyone but organizers) the team's Ladder score as the
        primary metric and null for the others."""
        return selectors.visible_scores(submission=submission,
                                         exact_scores=self._access(submission).exact_scores)

    @extend_schema_field(serializers.CharField(help_text="while the phase runs the Ladder, why the scores are the "
                                               "team's Ladder score and when the exact ones come; else empty"))
    def get_ladder(self, submission: Submission) -> str:
        if self._access(submission).exact_scores:
            return ""
        return selectors.ladder_notice(phase=submission.phase)

    @extend_schema_field(IntervalsOutput)
    def get_ci(self, submission: Submission) -> dict[str, dict[str, list[float]]]:
        if not self._access(submission).exact_scores:
            return {}  # the Ladder: an interval would tell the exact score
        return selectors.intervals_by_split(submission=submission)

    def to_representation(self, submission: Submission) -> dict[str, Any]:
        data = super().to_representation(submission)
        access = self.context.get("access")
        if access is not None and not access.diagnostics:  # the team's own diagnostics, as on the web page
            data["problems"], data["warnings"], data["flag_reason"], data["hidden_reason"] = [], [], "", ""
        return data


class ScoreSetOutput(serializers.Serializer):
    """The scores one attempt gave and what made them."""

    attempt = serializers.IntegerField()
    scored_at = serializers.DateTimeField()
    scorer_version = serializers.CharField()
    gt_version = serializers.CharField(help_text="the ground truth's content hash")
    scores = ScoresOutput()


class SubmissionDetailOutput(SubmissionOutput):
    score_history = serializers.SerializerMethodField()

    @extend_schema_field(ScoreSetOutput(many=True))
    def get_score_history(self, submission: Submission) -> list[dict[str, Any]]:
        """Every score set the submission had, newest first (rescores keep the old ones here)."""
        if not self._access(submission).exact_scores:
            return []  # the Ladder: past attempts' exact scores are withheld too
        return ScoreSetOutput(selectors.score_history(submission=submission), many=True).data


class MethodFields(serializers.Serializer):
    method_name = serializers.CharField(max_length=200, help_text="shown on the leaderboard")
    method_description = serializers.CharField(allow_blank=True, default="")
    method_url = serializers.CharField(allow_blank=True, default="", help_text="paper or project page")
    code_url = serializers.CharField(allow_blank=True, default="")


def submission_response(request: Request, submission: Submission, status: int = 200, *,
                        output: type[SubmissionOutput] = SubmissionOutput) -> Response:
    """The submission as the caller may see it (201 with its Location when just made; a retried upload that
    found its earlier submission answers 200 with `Idempotent-Replayed: true`)."""
    access = selectors.submission_access(submission=submission, user=request.user)
    headers = {}
    if submission.replayed:
        status, headers["Idempotent-Replayed"] = 200, "true"
    if status == 201:
        headers["Location"] = reverse("api-submission", args=[submission.pk])
    return Response(output(submission, context={"access": access}).data, status=status,
                    headers=headers or None)


def _visible_or_404(request: Request, submission_id: int) -> Submission:
    """A submission the caller may see; 404 otherwise, so its existence does not leak."""
    submission = selectors.submission_get(submission_id=submission_id)
    if submission is None or not selectors.submission_access(submission=submission, user=request.user).view:
        raise NotFound(f"There is no submission {submission_id} that you can see.")
    return submission


def _refuse_oversized(request: Request) -> None:
    """Refuse a body far over the limit before reading it (the service checks the exact file size)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    allowance = (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) + 64 * 1024  # the method fields and boundaries
    limit = settings.SUBMISSION_MAX_BYTES
    if length > limit + allowance:
        raise TooLarge(f"The request is {length} bytes; a submission may be at most {limit} bytes.",
                       detail={"size": length, "limit": limit})


class PhaseSubmissionsApi(APIView):
    """GET lists the caller's team's submissions to the phase, newest first. POST submits a zip (multipart
    `file` and the method fields) for scoring. One URL, two operations: each has its own serializers;
    only POST counts for the submit throttle."""

    class SubmissionCreateInput(MethodFields):
        file = serializers.FileField(help_text="the predictions as a .zip (split folders short, medium, long)")
        is_public = serializers.BooleanField(default=True, help_text="show it on the public leaderboard")
        is_baseline = serializers.BooleanField(default=False, help_text="organizers only: a baseline entry")

    permission_classes = [IsAuthenticated]
    parser_classes = [parsers.MultiPartParser]

    def get_throttles(self) -> list[BaseThrottle]:
        return [SubmitThrottle()] if self.request.method == "POST" else []

    @extend_schema(tags=["submissions"], operation_id="phase_submissions_list",
                   description="Your team's submissions to this phase, newest first.",
                   responses={200: SubmissionOutput(many=True), **error_responses(401, 403, 404)})
    def get(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        team = team_for(user=request.user, challenge=phase.challenge)
        if team is None:
            raise NotAllowed(f"You are not in a team for {phase.challenge.title}; only teams have submissions. "
                             "Create or join one on the challenge page.")
        submissions = selectors.submission_list(phase=phase, team=team)
        # The team's own list: every row is theirs to diagnose.
        return Response(SubmissionOutput(submissions, many=True, context={"user": request.user}).data)

    @extend_schema(tags=["submissions"], operation_id="phase_submissions_create", request=SubmissionCreateInput,
                   description="Submit a zip of predictions for your team. It is scored in the background: "
                   "follow it with GET /api/v1/submissions/<id>/. For files over a few hundred MB use the "
                   "uploads endpoints. Send an `Idempotency-Key` header (a new UUID per upload) to make "
                   "retrying safe: a request with a key you used before answers 200 with that submission "
                   "(`Idempotent-Replayed: true`) instead of making a second one; without a key, the same "
                   "file from your team within a few minutes is treated the same way.",
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                                                description="a new random value (UUID) per upload")],
                   responses={201: SubmissionOutput, 200: SubmissionOutput,
                              **error_responses(400, 401, 403, 404, 409, 413, 429)})
    def post(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        _refuse_oversized(request)
        data = self.SubmissionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        submission = services.submission_create(phase=phase, user=request.user,
                                                idempotency_key=request.headers.get("Idempotency-Key", ""),
                                                **data.validated_data)
        return submission_response(request, submission, 201)


class SubmissionDetailApi(APIView):
    """GET a submission: its status, why it failed, warnings, and its scores per board once scored. Its team
    and organizers always see it; others only once it is on a revealed public board. PATCH: the team
    changes the method's name, description or links (checked as on submit). One URL, two operations."""

    class SubmissionUpdateInput(serializers.Serializer):
        method_name = serializers.CharField(max_length=200, required=False, help_text="shown on the leaderboard")
        method_description = serializers.CharField(allow_blank=True, required=False)
        method_url = serializers.CharField(allow_blank=True, required=False, help_text="paper or project page")
        code_url = serializers.CharField(allow_blank=True, required=False)

    def get_permissions(self) -> list[BasePermission]:
        return [IsAuthenticated()] if self.request.method == "PATCH" else [AllowAny()]

    @extend_schema(tags=["submissions"], operation_id="submissions_retrieve",
                   responses={200: SubmissionDetailOutput, **error_responses(401, 404)})
    def get(self, request: Request, submission_id: int) -> Response:
        return submission_response(request, _visible_or_404(request, submission_id), output=SubmissionDetailOutput)

    @extend_schema(tags=["submissions"], operation_id="submissions_partial_update", request=SubmissionUpdateInput,
                   description="Your team changes the method fields of a submission (only the fields sent).",
                   responses={200: SubmissionOutput, **error_responses(400, 401, 403, 404)})
    def patch(self, request: Request, submission_id: int) -> Response:
        submission = _visible_or_404(request, submission_id)
        data = self.SubmissionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        updated = services.submission_update_method(submission=submission, user=request.user, **data.validated_data)
        return submission_response(request, updated)


class SubmissionCancelApi(APIView):
    """Cancel a submission that has not finished; it then uses no quota."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["submissions"], operation_id="submissions_cancel", request=None,
                   responses={200: SubmissionOutput, **error_responses(401, 403, 404, 409)})
    def post(self, request: Request, submission_id: int) -> Response:
        submission = _visible_or_404(request, submission_id)
        return submission_response(request, services.submission_cancel(submission=submission, user=request.user))


class SubmissionReceiptApi(APIView):
    """GET the signed receipt of a submission's latest scoring, as a file (egomask-receipt-<id>.json). Whoever
    may see the submission and its exact scores gets it (receipts.receipt_get); `egomask verify` checks it."""

    @extend_schema(tags=["submissions"], operation_id="submissions_receipt",
                   description="The signed receipt of the submission's latest scoring: "
                   '{"format": "egomask-receipt/1", "payload", "key_id", "public_key", "signature"}. Check it '
                   "offline with `egomask verify RECEIPT --key <the key of /.well-known/egomask-receipt-key.json>`. "
                   "403 while the phase runs the Ladder (exact scores are hidden until it ends); 409 when the "
                   "submission has no receipt (not scored).",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="the receipt"),
                              **error_responses(403, 404, 409)})
    def get(self, request: Request, submission_id: int) -> HttpResponse:
        receipt = receipts.receipt_get(submission_id=submission_id, user=request.user)
        response = HttpResponse(json.dumps(receipt, indent=2, ensure_ascii=False) + "\n",
                                content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="egomask-receipt-{submission_id}.json"'
        return response


# --- leaderboards -----------------------------------------------------------------------------


class LeaderboardQuery(serializers.Serializer):
    split = serializers.ChoiceField(choices=SPLIT_ORDER, default="overall", help_text="which board")
    metric = serializers.ChoiceField(choices=METRICS, required=False,
                                     help_text="rank by this metric; the phase's primary metric by default")


def _board_view(request: Request, phase_id: int, variant: str) -> board_cache.BoardView:
    """The board the query names (?split=, ?metric=), as the caller is served it."""
    phase = phase_or_404(request, phase_id, related=BOARD)
    query = LeaderboardQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    split = query.validated_data["split"]
    codes = phase_boards(phase=phase)
    if split not in codes:
        raise ApplicationError(f"This phase has no {split} leaderboard; choose one of {', '.join(codes)}.",
                               detail={"splits": codes})
    return board_cache.board_view(phase=phase, split=split, metric=query.validated_data.get("metric"),
                                  viewer=request.user, variant=variant)


def _board(request: Request, view: board_cache.BoardView) -> selectors.Leaderboard:
    """The board's rows, read from the materialized board (the scores are not read to serve one)."""
    return selectors.board_get(phase=view.phase, split=view.split, metric=view.metric, viewer=request.user,
                               now=view.now, include_reported=True)


class BoardMetricsOutput(serializers.Serializer):
    """A board row's metrics; null where a reported row's source gives no number."""

    T_recall = serializers.FloatField(allow_null=True, help_text="percent")
    IoU_all = serializers.FloatField(allow_null=True, help_text="percent")
    IoU_gold = serializers.FloatField(allow_null=True, help_text="percent")
    IoU_gold_pred = serializers.FloatField(allow_null=True, help_text="percent")


class BaselineOutput(serializers.Serializer):
    """Where a baseline row comes from."""

    kind = serializers.ChoiceField(choices=["runner", "uploaded", "reported"],
                                   help_text="runner: produced on this server by a reference runner; uploaded: "
                                   "a zip the organizers uploaded; reported: numbers quoted from a paper, not "
                                   "reproduced here (never ranked)")
    runner = serializers.CharField(allow_null=True, help_text="the reference runner (kind runner), else null")
    version = serializers.CharField(allow_null=True, help_text="the runner's version (kind runner), else null")
    run = serializers.IntegerField(required=False, help_text="the baseline run that made it (kind runner)")
    source = serializers.CharField(required=False, help_text="where the numbers come from (kind reported)")
    citation = serializers.CharField(required=False, allow_blank=True, help_text="kind reported")


class LeaderboardRowOutput(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True, help_text="ties share a rank; null for baselines and "
                                    "rows without a value")
    team = serializers.CharField(allow_null=True, help_text="null for a baseline")
    team_id = serializers.IntegerField(allow_null=True)
    method = serializers.CharField()
    method_url = serializers.CharField()
    code_url = serializers.CharField()
    is_baseline = serializers.BooleanField()
    baseline = BaselineOutput(allow_null=True, help_text="null for a team's row")
    scores = BoardMetricsOutput()
    n_expressions = serializers.IntegerField(allow_null=True, help_text="null for a reported row")
    submitted_at = serializers.DateTimeField(allow_null=True, help_text="null for a reported row")
    submission_id = serializers.IntegerField(allow_null=True, help_text="null for a reported row")
    rescoring = serializers.BooleanField(help_text="true while the submission is scored again (e.g. after a new "
                                         "ground truth): the scores are the previous attempt's until then")
    flagged = serializers.BooleanField(help_text="flagged by the organizers: listed, with a mark")
    ci = serializers.DictField(child=serializers.ListField(child=serializers.FloatField(), min_length=2,
                                                           max_length=2), allow_null=True,
                               help_text="95% bootstrap interval of each metric, in percent: {metric: [low, high]} "
                               "(resampling videos; null for a reported row)")
    tie_group = serializers.IntegerField(allow_null=True, help_text="the rank of the first row of this row's group of "
                                         "rows not distinguishable by a paired bootstrap test on the primary metric "
                                         "(Holm-corrected along the board); null where there is no such test (a "
                                         "reported row, or a board sorted by another metric)")
    tied_with = serializers.ListField(child=serializers.IntegerField(), help_text="the ranks of the other rows "
                                      "of its tie group (empty: distinguishable from its neighbours)")


class LeaderboardOutput(serializers.Serializer):
    phase = serializers.IntegerField(source="phase.pk")
    split = serializers.CharField()
    metric = serializers.CharField(help_text="the metric the rows are ranked by")
    visible = serializers.BooleanField(help_text="false while a private board is not revealed: no rows")
    message = serializers.CharField(help_text="why there are no rows, when there are none")
    ladder = serializers.CharField(source="ladder_notice", help_text="while the phase runs the Ladder: that the "
                                   "team rows show the Ladder's score (primary metric only, other metrics, ci and "
                                   "tie_group null) and when the exact scores are revealed; empty otherwise")
    reveal_at = serializers.DateTimeField(allow_null=True)
    rows = LeaderboardRowOutput(many=True)


class LeaderboardApi(APIView):
    """A phase's leaderboard, ranked by the server (one row per team, baselines badged and unranked).
    A private board has no rows, except for organizers, until its reveal time."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["leaderboards"], operation_id="leaderboard_retrieve", parameters=[LeaderboardQuery],
                   description="Answered with an ETag: send it back in If-None-Match and an unchanged board "
                   "answers 304 with no body.",
                   responses={200: LeaderboardOutput, 304: OpenApiResponse(description="the board has not changed"),
                              **error_responses(400, 401, 404)})
    def get(self, request: Request, phase_id: int) -> HttpResponse:
        view = _board_view(request, phase_id, "json")
        if (unchanged := board_cache.not_modified(request, view)) is not None:
            return unchanged
        body = board_cache.rendered(view, lambda: JSONRenderer().render(LeaderboardOutput(_board(request, view)).data))
        return board_cache.headers(HttpResponse(body, content_type="application/json"), view)


_iso = serializers.DateTimeField().to_representation  # ISO 8601 in UTC, as in the JSON
CSV_COLUMNS = ["rank", "team", "method", "is_baseline", *METRICS, "submitted_at", "submission_id", "baseline",
               *(f"{m}_ci_{end}" for m in METRICS for end in ("low", "high")), "tie_group"]


def _baseline_cell(baseline: dict[str, object] | None) -> str:
    """"" for a team, "runner:NAME:VERSION", "uploaded" or "reported:SOURCE" for a baseline."""
    if baseline is None:
        return ""
    if baseline["kind"] == "runner":
        return f"runner:{baseline['runner']}:{baseline['version']}"
    if baseline["kind"] == "reported":
        return f"reported:{baseline['source']}"
    return str(baseline["kind"])


_cell = spreadsheet_safe  # team and method names are typed by users: never a formula in a spreadsheet


class LeaderboardCsvApi(APIView):
    """The same leaderboard as a CSV download (columns: rank, team, method, is_baseline, the four metrics,
    submitted_at, submission_id, baseline, each metric's interval (low, high), tie_group). A board that is still
    private answers 403 with its reveal time."""

    permission_classes = [AllowAny]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        return super().perform_content_negotiation(request, force=True)  # errors are JSON whatever is accepted

    @extend_schema(tags=["leaderboards"], operation_id="leaderboard_csv", parameters=[LeaderboardQuery],
                   description="Answered with an ETag, as the JSON board is (If-None-Match: 304).",
                   responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="the CSV file"),
                              304: OpenApiResponse(description="the board has not changed"),
                              **error_responses(400, 401, 403, 404)})
    def get(self, request: Request, phase_id: int) -> HttpResponse:
        view = _board_view(request, phase_id, "csv")
        if not view.visible:
            board = _board(request, view)  # no rows: the notice and its reveal time
            raise NotAllowed(board.message, detail={"reveal_at": _iso(board.reveal_at) if board.reveal_at else None})
        if (unchanged := board_cache.not_modified(request, view)) is not None:
            return unchanged
        body = board_cache.rendered(view, lambda: _csv(_board(request, view)).encode())
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        phase = view.phase
        response["Content-Disposition"] = f'attachment; filename="{phase.challenge.slug}-{phase.slug}-{view.split}.csv"'
        return board_cache.headers(response, view)


def _csv(board: selectors.Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in board.rows:
        writer.writerow([_cell(v) for v in (
            row.rank if row.rank is not None else "", row.team or "", row.method, str(row.is_baseline).lower(),
            *(row.scores.get(m, "") for m in METRICS), _iso(row.submitted_at) if row.submitted_at else "",
            row.submission_id or "", _baseline_cell(row.baseline),
            *((row.ci or {}).get(m, ["", ""])[end] for m in METRICS for end in (0, 1)),
            row.tie_group if row.tie_group is not None else "")])
    return buffer.getvalue()
