"""API classes for the board by trait and for comparing submissions: each parses input, calls a selector of
comparisons.py (where the rules of what is shown live), shapes output. The pages show the same data."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.api_support import error_responses, phase_or_404
from leaderboard.challenges.models import SPLIT_ORDER
from scoring import METRICS
from scoring.diagnostics import TRAITS

from . import comparisons
from .api import MetricsOutput

_Interval = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)


class BucketOutput(serializers.Serializer):
    label = serializers.CharField(help_text="the bucket, in the trait's unit (e.g. \"≤ 20\"); \"none\" where the "
                                  "trait is undefined")
    n = serializers.IntegerField(help_text="expressions of the split in this bucket")


class BucketValuesOutput(MetricsOutput):
    n = serializers.IntegerField(help_text="expressions of the bucket this row has a result for")


class TraitRowOutput(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True)
    team = serializers.CharField(allow_null=True, help_text="null for a baseline")
    method = serializers.CharField()
    is_baseline = serializers.BooleanField()
    submission_id = serializers.IntegerField(allow_null=True)
    tie_group = serializers.IntegerField(allow_null=True)
    values = serializers.ListField(child=BucketValuesOutput(allow_null=True), allow_null=True,
                                   help_text="one entry per bucket of `buckets` (null: nothing of the row in it); "
                                   "null where the row has no results by trait to show")


class ByTraitQuery(serializers.Serializer):
    split = serializers.ChoiceField(choices=SPLIT_ORDER, default="overall", help_text="which board",
                                    error_messages={"invalid_choice": "there is no board {input!r}; choose one of "
                                                    + ", ".join(SPLIT_ORDER) + "."})
    trait = serializers.ChoiceField(choices=TRAITS, default="presence", help_text="the egocentric trait",
                                    error_messages={"invalid_choice": "there is no trait {input!r}; choose one of "
                                                    + ", ".join(TRAITS) + "."})
    metric = serializers.ChoiceField(choices=METRICS, required=False, help_text="the board's order; the phase's "
                                     "primary metric by default",
                                     error_messages={"invalid_choice": "there is no metric {input!r}; choose one of "
                                                     + ", ".join(METRICS) + "."})


class ByTraitOutput(serializers.Serializer):
    phase = serializers.IntegerField(source="phase.pk")
    split = serializers.CharField()
    trait = serializers.CharField()
    label = serializers.CharField(help_text="what the trait is called")
    unit = serializers.CharField()
    metric = serializers.CharField(help_text="the metric the rows are ordered by")
    visible = serializers.BooleanField(help_text="false while a private board is not revealed: no rows")
    message = serializers.CharField(help_text="what is not shown, and why (empty when everything is)")
    min_bucket_size = serializers.IntegerField(help_text="buckets with fewer expressions are shown to organizers "
                                               "only")
    hidden_buckets = serializers.IntegerField(help_text="buckets not shown to you")
    buckets = BucketOutput(many=True)
    rows = TraitRowOutput(many=True)


class LeaderboardByTraitApi(APIView):
    """A board's rows with their four metrics by bucket of one egocentric trait (presence, trajectories,
    trajectory_length, area, adjacent_iou, frames, first_frames), for comparing rows on one axis."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["leaderboards"], operation_id="leaderboard_by_trait", parameters=[ByTraitQuery],
                   description="Buckets are fixed per ground-truth version (tertiles of the trait). A bucket with "
                   "fewer expressions than the phase's min_bucket_size is shown to organizers only; while the "
                   "Ladder runs, rows carry no values for anyone else. A private board has no rows until it is "
                   "revealed, except for organizers.",
                   responses={200: ByTraitOutput, **error_responses(400, 401, 404)})
    def get(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        query = ByTraitQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = comparisons.board_by_trait(phase=phase, viewer=request.user, **query.validated_data)
        return Response(ByTraitOutput(data).data)


class DifferenceOutput(serializers.Serializer):
    difference = serializers.FloatField(help_text="this submission minus the first, in percent points (paired over "
                                        "the expressions both scored)")
    ci = _Interval
    p_value = serializers.FloatField(help_text="two-sided paired cluster-bootstrap p-value")
    n_expressions = serializers.IntegerField()
    videos = serializers.IntegerField(help_text="videos resampled (medium clips count with their source video); "
                                      "with one, the interval and p-value say nothing")
    distinguishable = serializers.BooleanField(help_text="p-value below the phase's tie level (`level`)")


class MetricDifferencesOutput(serializers.Serializer):
    T_recall = DifferenceOutput(allow_null=True)
    IoU_all = DifferenceOutput(allow_null=True)
    IoU_gold = DifferenceOutput(allow_null=True)
    IoU_gold_pred = DifferenceOutput(allow_null=True)


class SplitComparisonOutput(serializers.Serializer):
    split = serializers.CharField()
    scores = serializers.ListField(child=MetricsOutput(), help_text="per compared submission, in the order given")
    ci = serializers.ListField(child=serializers.DictField(child=_Interval),
                               help_text="per compared submission: each metric's 95% interval, {metric: [low, high]}")
    n_expressions = serializers.ListField(child=serializers.IntegerField())
    differences = serializers.ListField(child=MetricDifferencesOutput(), help_text="per submission after the first: "
                                        "its paired difference from the first on each metric")


class TraitComparisonOutput(serializers.Serializer):
    trait = serializers.CharField()
    label = serializers.CharField()
    buckets = BucketOutput(many=True)
    hidden_buckets = serializers.IntegerField(help_text="buckets under the phase's min_bucket_size, not shown to you")
    differences = serializers.ListField(child=serializers.ListField(child=DifferenceOutput(allow_null=True)),
                                        help_text="per submission after the first, per bucket: the paired "
                                        "difference from the first on the primary metric (all expressions)")


class VideoDifferenceOutput(serializers.Serializer):
    split = serializers.CharField()
    video = serializers.CharField()
    expressions = serializers.IntegerField()
    reference = serializers.FloatField(help_text="the first submission's mean over the video, percent")
    other = serializers.FloatField(help_text="this submission's mean over the video, percent")
    difference = serializers.FloatField()


class ComparedOutput(serializers.Serializer):
    submission_id = serializers.IntegerField()
    team = serializers.CharField(allow_null=True, help_text="null for a baseline")
    method = serializers.CharField()
    is_baseline = serializers.BooleanField()


class ComparisonOutput(serializers.Serializer):
    phase = serializers.IntegerField(source="phase.pk")
    submissions = ComparedOutput(many=True, help_text="in the order given; the first is the reference")
    metric = serializers.CharField(help_text="the primary metric (traits and videos)")
    level = serializers.FloatField(help_text="the phase's tie level: p-values at or above it are not "
                                   "distinguishable")
    samples = serializers.IntegerField(help_text="bootstrap resamples")
    gt_version = serializers.CharField()
    min_bucket_size = serializers.IntegerField()
    splits = SplitComparisonOutput(many=True)
    traits = TraitComparisonOutput(many=True)
    videos = serializers.ListField(child=serializers.ListField(child=VideoDifferenceOutput()), allow_null=True,
                                   help_text="per submission after the first: the 10 videos whose means on the "
                                   "primary metric differ most from the first's; null where per-video results "
                                   "of every compared submission are not yours to see")


class CompareApi(APIView):
    """Two to eight submissions of a phase side by side: per board their scores and intervals and the paired
    differences from the first, per trait bucket the difference on the primary metric, and (where per-video
    results are yours to see) the videos that differ most."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["leaderboards"], operation_id="compare_submissions",
                   parameters=[OpenApiParameter("submissions", str, required=True,
                                                description="comma-separated submission ids (2 to 8); the first "
                                                "is the reference")],
                   description="Each submission must be one you can see with its exact scores (otherwise it is "
                   "answered as missing, 404). Submissions scored on different ground-truth versions cannot be "
                   "paired (400).",
                   responses={200: ComparisonOutput, **error_responses(400, 401, 404)})
    def get(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        ids = comparisons.compare_ids(request.query_params.getlist("submissions"))
        return Response(comparison_data(comparisons.compare(phase=phase, submission_ids=ids, viewer=request.user)))


def comparison_data(comparison: comparisons.Comparison) -> dict[str, Any]:
    """The comparison as the API serves it (the page draws its charts from the same)."""
    return ComparisonOutput(comparison).data


def by_trait_data(by_trait: comparisons.ByTrait) -> dict[str, Any]:
    return ByTraitOutput(by_trait).data
