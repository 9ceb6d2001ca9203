"""Admin for organizers: teams and their members (read-only; teams form through the site)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from leaderboard.adminkit import ChallengeScopedAdmin, ReadOnlyInline
from leaderboard.challenges.permissions import Can

from .models import Membership, Team


class MembershipInline(ReadOnlyInline):
    model = Membership
    fields = ["user", "role", "joined_at"]


@admin.register(Team)
class TeamAdmin(ChallengeScopedAdmin):
    change_needs = Can.MODERATE
    add_needs = None  # a team needs an owner: team_create runs when a participant creates one
    delete_needs = None  # its submissions go with it: staff only
    list_display = ["name", "challenge", "members", "created_by", "created_at"]
    list_filter = ["challenge"]
    list_select_related = ["challenge", "created_by"]
    search_fields = ["name", "memberships__user__username"]
    fields = ["name", "challenge", "invite_code", "created_by", "created_at"]
    readonly_fields = ["challenge", "invite_code", "created_by", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def members(self, team: Team) -> int:
        return team.member_count  # type: ignore[attr-defined]
