"""API classes for a submission's diagnostics (diagnostics.py decides what a viewer gets; these only shape it):
its results by egocentric trait beside the phase's baselines, its error types, and, where the phase allows
per-frame details, one expression's frame timeline."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.api_support import error_responses

from . import diagnostics
from .api import _visible_or_404


class TraitBucketOutput(serializers.Serializer):
    bucket = serializers.CharField(help_text="the bucket's label (\"none\": the trait is undefined there)")
    n = serializers.IntegerField(help_text="expressions in the bucket")
    T_recall = serializers.FloatField(help_text="percent, mean over the bucket's expressions")
    IoU_all = serializers.FloatField(help_text="percent")
    IoU_gold = serializers.FloatField(help_text="percent")
    IoU_gold_pred = serializers.FloatField(help_text="percent")


def _by_trait(**options: object) -> serializers.DictField:
    return serializers.DictField(child=TraitBucketOutput(many=True), help_text="{trait: [bucket, ...]} in the traits' "
                                 "bucket order", **options)


class TraitOutput(serializers.Serializer):
    name = serializers.CharField(help_text="presence, trajectories, trajectory_length, area, adjacent_iou, frames "
                                 "or first_frames (docs/diagnostics.md)")
    label = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    edges = serializers.ListField(child=serializers.FloatField(), help_text="bucket edges (tertiles of the ground "
                                  "truth's expressions; a value on an edge is in the lower bucket)")
    buckets = serializers.ListField(child=serializers.CharField(), help_text="the buckets' labels, in order")


class BaselineTraitsOutput(serializers.Serializer):
    submission = serializers.IntegerField()
    method = serializers.CharField()
    by_trait = _by_trait()


class WithheldOutput(serializers.Serializer):
    buckets = serializers.IntegerField(help_text="this submission's buckets left out (fewer expressions than the "
                                       "phase's min_bucket_size)")
    of = serializers.IntegerField(help_text="its buckets in all")
    note = serializers.CharField()


class ErrorTypesOutput(serializers.Serializer):
    expressions = serializers.IntegerField()
    gt_frames = serializers.IntegerField(help_text="frames where the object is (G)")
    pred_frames = serializers.IntegerField(help_text="frames with a predicted mask (P)")
    hits = serializers.IntegerField(help_text="|G ∩ P|")
    missed = serializers.IntegerField(help_text="|G \\ P|")
    hallucinated = serializers.IntegerField(help_text="|P \\ G|")
    low_iou = serializers.IntegerField(help_text="hits whose IoU is below low_iou_below")
    low_iou_below = serializers.FloatField()
    missed_pct = serializers.FloatField(help_text="percent of G")
    hallucinated_pct = serializers.FloatField(help_text="percent of P")
    low_iou_pct = serializers.FloatField(help_text="percent of the hits")


class DiagnosticsOutput(serializers.Serializer):
    """The answer's shape (diagnostics.submission_diagnostics writes it).
    Everything but `submission`, `available` and `message` is absent while `available` is false;
    `expressions` and `timelines_url` are there only for a viewer the phase shows per-frame details to."""

    submission = serializers.IntegerField()
    available = serializers.BooleanField(help_text="false: not scored yet, or the phase runs the Ladder (message)")
    message = serializers.CharField(allow_blank=True)
    details = serializers.BooleanField(required=False, help_text="per-video and per-frame details are shown to you")
    gt_version = serializers.CharField(required=False)
    primary_metric = serializers.CharField(required=False)
    metrics = serializers.ListField(child=serializers.CharField(), required=False)
    min_bucket_size = serializers.IntegerField(required=False)
    k = serializers.IntegerField(required=False, allow_null=True, help_text="first_frames: the first k frames")
    traits = TraitOutput(many=True, required=False)
    by_trait = _by_trait(required=False)
    withheld = WithheldOutput(required=False, allow_null=True, help_text="null where details are shown")
    baselines = BaselineTraitsOutput(many=True, required=False)
    errors = serializers.DictField(child=ErrorTypesOutput(), required=False, help_text="{split or overall: ...}")
    expressions = serializers.ListField(child=serializers.CharField(), required=False,
                                        help_text="split/video/exp_id of each expression with a timeline")
    timelines_url = serializers.CharField(required=False)


class TimelineOutput(serializers.Serializer):
    submission = serializers.IntegerField()
    expression = serializers.CharField(help_text="split/video/exp_id")
    split = serializers.CharField()
    video = serializers.CharField()
    exp_id = serializers.CharField()
    n = serializers.IntegerField(help_text="the video's frames")
    gt = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                               help_text="[start, stop) ranges of frame positions where the object is (G)")
    pred = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                                 help_text="[start, stop) ranges of frame positions with a predicted mask (P)")
    hits = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                 help_text="[position, IoU] of each frame of G ∩ P")
    low_iou_below = serializers.FloatField(allow_null=True)


class SubmissionDiagnosticsApi(APIView):
    """A submission's diagnostics: the four metrics by bucket of each egocentric trait (beside the phase's
    baselines), the traits' definitions and the error types per split. Whoever may see the submission."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["submissions"], operation_id="submissions_diagnostics",
                   description="Where no per-video details are shown to you (test phases), buckets of fewer than "
                   "the phase's min_bucket_size expressions are left out (`withheld` says how many). While the "
                   "phase runs the Ladder, only its organizers get diagnostics.",
                   responses={200: DiagnosticsOutput, **error_responses(401, 404)})
    def get(self, request: Request, submission_id: int) -> Response:
        submission = _visible_or_404(request, submission_id)
        return Response(diagnostics.submission_diagnostics(submission=submission, user=request.user))


class SubmissionTimelinesApi(APIView):
    """One expression's frame timeline (ground-truth frames, predicted frames, each hit's IoU), where the phase
    shows per-frame details to the caller."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["submissions"], operation_id="submissions_timeline",
                   parameters=[OpenApiParameter("expression", str, required=True,
                                                description="split/video/exp_id, as the diagnostics list them")],
                   responses={200: TimelineOutput, **error_responses(400, 401, 403, 404, 409)})
    def get(self, request: Request, submission_id: int) -> Response:
        submission = _visible_or_404(request, submission_id)
        return Response(diagnostics.submission_timeline(submission=submission, user=request.user,
                                                        expression_key=request.query_params.get("expression", "")))
