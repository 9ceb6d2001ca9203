"""API classes for challenges and phases: each parses input, calls selectors, shapes output.

They live in the submissions app, not in challenges, because each answer carries the caller's team
quota (what is left of it), which is counted from submissions: challenges must not depend on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.accounts.selectors import team_for

from . import admission
from leaderboard.api_support import error_responses, phase_or_404
from leaderboard.challenges import selectors
from leaderboard.challenges.models import Challenge, Phase
from leaderboard.errors import NotFound
from scoring import METRICS

from .selectors import Quota, quota_for


def phase_context(user: AbstractBaseUser | AnonymousUser, phases: Iterable[Phase]) -> dict[str, Any]:
    """What PhaseOutput needs beyond the phase: one clock, the quota left for the caller's team, and what
    would refuse the caller's submission besides the phase's dates and the quota."""
    now = timezone.now()
    teams: dict[int, Any] = {}
    quotas: dict[int, Quota | None] = {}
    refusals: dict[int, str] = {}
    for phase in phases:
        if phase.challenge_id not in teams:
            teams[phase.challenge_id] = team_for(user=user, challenge=phase.challenge)
        team = teams[phase.challenge_id]
        quotas[phase.pk] = quota_for(phase=phase, team_id=team.pk, now=now) if team else None
        refusals[phase.pk] = admission.participant_block(phase=phase, team=team, user=user)
    return {"now": now, "quotas": quotas, "refusals": refusals}


class SplitOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(help_text="short, medium, long or overall")


class QuotaOutput(serializers.Serializer):
    per_day = serializers.IntegerField(allow_null=True, help_text="submissions a day; null: no daily limit")
    per_day_left = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField(allow_null=True, help_text="submissions in all; null: no total limit")
    total_left = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField(help_text="when the daily count starts over (UTC midnight)")


class PhaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    challenge = serializers.CharField(source="challenge.slug", help_text="the challenge's slug")
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    accepts_submissions = serializers.SerializerMethodField(help_text="true only while the phase is open")
    is_open = serializers.SerializerMethodField()
    visibility = serializers.ChoiceField(choices=Phase.Visibility.choices)
    reveal_at = serializers.DateTimeField(allow_null=True, help_text="when a private board becomes public")
    ranking_rule = serializers.ChoiceField(choices=Phase.Rule.choices)
    primary_metric = serializers.ChoiceField(choices=METRICS)
    splits = SplitOutput(many=True)
    quota = serializers.SerializerMethodField(help_text="for the caller's team; null without one")
    refusal = serializers.SerializerMethodField(help_text="what would refuse the caller's submission besides the "
                                                "dates and the quota, in the words submitting would answer (an "
                                                "e-mail address to verify, terms to accept, a disqualification); "
                                                "empty when nothing does")

    def get_accepts_submissions(self, phase: Phase) -> bool:
        return phase.is_open(self.context["now"])

    def get_is_open(self, phase: Phase) -> bool:
        return phase.is_open(self.context["now"])

    def get_refusal(self, phase: Phase) -> str:
        return self.context.get("refusals", {}).get(phase.pk, "")

    @extend_schema_field(QuotaOutput(allow_null=True))
    def get_quota(self, phase: Phase) -> dict[str, Any] | None:
        quota = self.context["quotas"].get(phase.pk)
        return None if quota is None else QuotaOutput(quota).data


class ChallengeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    phases = serializers.SerializerMethodField()

    @extend_schema_field(PhaseOutput(many=True))
    def get_phases(self, challenge: Challenge) -> list[dict[str, Any]]:
        return PhaseOutput(self.context["phases"][challenge.pk], many=True, context=self.context).data


def _challenges_data(request: Request, challenges: list[Challenge]) -> Any:
    phases = {c.pk: list(selectors.phase_list(challenge=c)) for c in challenges}
    context = phase_context(request.user, [p for ps in phases.values() for p in ps])
    return ChallengeOutput(challenges, many=True, context={**context, "phases": phases}).data


class ChallengeListApi(APIView):
    """The published challenges, each with its phases (and the quota left for the caller's team)."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["challenges"], operation_id="challenges_list",
                   responses={200: ChallengeOutput(many=True), **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(_challenges_data(request, list(selectors.challenge_list())))


class ChallengeDetailApi(APIView):
    """One challenge with its phases."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["challenges"], operation_id="challenges_retrieve",
                   responses={200: ChallengeOutput, **error_responses(401, 404)})
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = selectors.challenge_get_by_id(challenge_id=challenge_id, viewer=request.user)
        if challenge is None:
            raise NotFound(f"There is no challenge {challenge_id}; GET /api/v1/challenges/ lists them.")
        return Response(_challenges_data(request, [challenge])[0])


class PhaseDetailApi(APIView):
    """One phase: dates, whether it accepts submissions now, its boards, and the caller's quota."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["challenges"], operation_id="phases_retrieve",
                   responses={200: PhaseOutput, **error_responses(401, 404)})
    def get(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        return Response(PhaseOutput(phase, context=phase_context(request.user, [phase])).data)

