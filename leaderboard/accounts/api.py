"""API classes for tokens and teams: each parses input, calls a service or selector, shapes output."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from leaderboard.api_support import TokenThrottle, error_responses
from leaderboard.errors import NotFound

from . import selectors, services
from .models import Membership, Team


class TokenApi(APIView):
    """POST trades a user name and password for the caller's API token (made if missing); DELETE revokes
    the token the request is made with. Send the token as `Authorization: Token <t>` or `Bearer <t>`.
    One URL, two operations: each method has its own serializers, permissions and throttle."""

    class TokenObtainInput(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})

    class TokenOutput(serializers.Serializer):
        token = serializers.CharField(help_text="send it as 'Authorization: Token <token>' (or Bearer)")

    def get_authenticators(self) -> list:
        # Logging in needs nothing but the body: a stale token in the header must not stand in the way.
        # (The schema generator asks before it has set a request.)
        return [] if getattr(self.request, "method", None) == "POST" else super().get_authenticators()

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_throttles(self) -> list[BaseThrottle]:
        return [TokenThrottle()] if self.request.method == "POST" else []

    @extend_schema(tags=["auth"], operation_id="auth_token_create", request=TokenObtainInput,
                   description="Trade a user name and password for your API token (made if you have none). "
                   "The same token comes back until it is revoked or rotated.",
                   responses={200: TokenOutput, **error_responses(400, 429)})
    def post(self, request: Request) -> Response:
        data = self.TokenObtainInput(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.token_obtain(username=data.validated_data["username"],
                                      password=data.validated_data["password"])
        return Response(self.TokenOutput({"token": token.key}).data)

    @extend_schema(tags=["auth"], operation_id="auth_token_destroy", request=None,
                   description="Revoke your token: it stops working at once. POST gets a new one.",
                   responses={204: OpenApiResponse(description="The token no longer works."),
                              **error_responses(401)})
    def delete(self, request: Request) -> Response:
        services.token_revoke(user=request.user)
        return Response(status=204)


class MemberOutput(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    joined_at = serializers.DateTimeField()


class TeamOutput(serializers.Serializer):
    """A team as a caller who may see it sees it (see selectors.TeamAccess): its members' names, and the
    invite code only for its members."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    challenge = serializers.CharField(source="challenge.slug", help_text="the challenge's slug")
    members = serializers.SerializerMethodField()
    is_owner = serializers.SerializerMethodField(help_text="the caller owns the team")
    invite_code = serializers.SerializerMethodField(help_text="members only: the code that joins the team")

    def _access(self, team: Team) -> selectors.TeamAccess:
        return self.context["access"][team.pk]

    @extend_schema_field(MemberOutput(many=True))
    def get_members(self, team: Team) -> list[dict[str, Any]]:
        return MemberOutput(selectors.team_members(team=team), many=True).data

    def get_is_owner(self, team: Team) -> bool:
        return self._access(team).new_code

    def get_invite_code(self, team: Team) -> str | None:
        return team.invite_code if self._access(team).invite else None  # the code is a key to the team


def _teams_data(request: Request, teams: list[Team]) -> Any:
    """Teams the caller may see (the views answer 404 for the others first)."""
    access = {team.pk: selectors.team_access(team=team, user=request.user) for team in teams}
    return TeamOutput(teams, many=True, context={"access": access}).data


class TeamListApi(APIView):
    """The caller's teams (one per challenge at most)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["teams"], operation_id="teams_list",
                   responses={200: TeamOutput(many=True), **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(_teams_data(request, list(selectors.user_teams(user=request.user))))


class TeamDetailApi(APIView):
    """A team and its members, for its members and organizers; to anyone else there is no such team
    (member lists are not public: boards show team names). The invite code only to its members."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["teams"], operation_id="teams_retrieve",
                   responses={200: TeamOutput, **error_responses(401, 404)})
    def get(self, request: Request, team_id: int) -> Response:
        team = selectors.team_get(team_id=team_id)
        if team is None or not selectors.team_access(team=team, user=request.user).view:
            raise NotFound(f"There is no team {team_id} that you can see.")
        return Response(_teams_data(request, [team])[0])
