"""The API's list of a phase's board snapshots (snapshots.py): what to cite and where to fetch each one. The
snapshots themselves are served at their stable site addresses (snapshot_views.py), which the list gives."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.api_support import error_responses, phase_or_404

from . import snapshots


class SnapshotOutput(serializers.Serializer):
    number = serializers.IntegerField(help_text="1, 2, ... per phase")
    created_at = serializers.DateTimeField()
    reason = serializers.CharField()
    board_version = serializers.IntegerField(help_text="the version of the boards it copies")
    sha256 = serializers.CharField(help_text="sha256 of the JSON document's bytes (also its ETag)")
    title = serializers.CharField(help_text="a title to cite it by")
    json_url = serializers.CharField(help_text="the JSON document; never changes")
    csv_url = serializers.CharField(help_text="the same rows as CSV, with the receipts' key id and signature")
    gt_versions = serializers.ListField(child=serializers.CharField())
    scorer_versions = serializers.ListField(child=serializers.CharField())


class SnapshotListOutput(serializers.Serializer):
    phase = serializers.IntegerField()
    visible = serializers.BooleanField(help_text="false while the boards are private or under a running Ladder: "
                                       "then the list is empty (organizers see it all the same)")
    message = serializers.CharField(help_text="why there are none to show, when that is so")
    latest_url = serializers.CharField(help_text="redirects to the newest snapshot's JSON")
    snapshots = SnapshotOutput(many=True)


class PhaseSnapshotsApi(APIView):
    """A phase's board snapshots, newest first: citable copies of its revealed boards."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["leaderboards"], operation_id="phase_snapshots",
                   responses={200: SnapshotListOutput, **error_responses(401, 404)})
    def get(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        visible = snapshots.snapshots_visible(phase=phase, viewer=request.user)
        items = [{**{name: getattr(snapshot, name) for name in ("number", "created_at", "reason", "board_version",
                                                                   "sha256", "gt_versions", "scorer_versions")},
                  "title": snapshots.snapshot_title(phase=phase, snapshot=snapshot),
                  "json_url": snapshots.snapshot_url(phase=phase, number=snapshot.number),
                  "csv_url": snapshots.snapshot_url(phase=phase, number=snapshot.number, suffix="csv")}
                 for snapshot in (snapshots.snapshot_list(phase=phase) if visible else [])]
        message = "" if visible else (snapshots.snapshot_refusal(phase=phase) or "The boards are not public.")
        latest = snapshots.snapshot_latest_url(phase=phase)
        return Response(SnapshotListOutput({"phase": phase.pk, "visible": visible, "message": message,
                                            "latest_url": latest, "snapshots": items}).data)
