"""The public queue status of a challenge under /api/v1/ (the same figures as its status page)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.api_support import error_responses
from leaderboard.challenges.selectors import challenge_get_by_id

from .selectors import challenge_queue_status


class ChallengeStatusApi(APIView):
    """GET /api/v1/challenges/<id>/status/: per phase, submissions waiting and running, the median scoring
    time of the last 24 h and an estimated wait; the live scoring workers. Counts only."""

    @extend_schema(tags=["challenges"], operation_id="challenges_status_retrieve", responses={200: inline_serializer(
        "ChallengeStatus", {
        "challenge": serializers.CharField(), "generated_at": serializers.DateTimeField(),
        "queue_ahead": serializers.IntegerField(), "scoring_workers": serializers.IntegerField(),
        "scoring_slots": serializers.IntegerField(), "median_seconds": serializers.FloatField(allow_null=True),
        "note": serializers.CharField(), "estimate_method": serializers.CharField(),
        "phases": serializers.ListField(child=serializers.DictField())}), **error_responses(404)})
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = challenge_get_by_id(challenge_id=challenge_id, viewer=request.user)
        if challenge is None:
            raise NotFound(f"There is no challenge {challenge_id}; GET /api/v1/challenges/ lists them.")
        return Response({"challenge": challenge.slug, **challenge_queue_status(challenge=challenge).as_dict()})
