"""Reads for users and teams."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from rest_framework.authtoken.models import Token

from leaderboard.challenges.models import Challenge
from leaderboard.challenges.permissions import Can, organizer_can

from .models import Membership, Team


def team_for(*, user: AbstractBaseUser | AnonymousUser, challenge: Challenge) -> Team | None:
    """The team the user acts for in this challenge, if any."""
    if not user.is_authenticated:
        return None
    membership = Membership.objects.select_related("team").filter(user=user, challenge=challenge).first()
    return membership.team if membership else None


def team_members(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("joined_at", "id")


def is_member(*, user: AbstractBaseUser | AnonymousUser, team: Team | None) -> bool:
    return bool(team and user.is_authenticated and team.memberships.filter(user=user).exists())


@dataclass(frozen=True)
class TeamAccess:
    """What one user may see of, and do with, one team. Every interface asks this, and only this.

    view      the team's page and its members' names: its members and its challenge's organizers; anyone
              else is answered as missing (existence does not leak; boards show team names only)
    invite    the invite code and link (a key to the team), and leaving: its members
    new_code  replace the invite code: its owner
    """

    view: bool
    invite: bool
    new_code: bool


def team_access(*, team: Team, user: AbstractBaseUser | AnonymousUser) -> TeamAccess:
    """The one answer to "what may this user see of, and do with, this team" (see TeamAccess)."""
    mine = team.memberships.filter(user=user).first() if user.is_authenticated else None
    return TeamAccess(view=mine is not None or organizer_can(user, team.challenge_id, Can.VIEW),
                      invite=mine is not None,
                      new_code=mine is not None and mine.role == Membership.Role.OWNER)


def user_teams(*, user: AbstractBaseUser) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).select_related("challenge")


def team_get(*, team_id: int) -> Team | None:
    return Team.objects.select_related("challenge").filter(pk=team_id).first()


def team_by_invite_code(*, invite_code: str) -> Team | None:
    return Team.objects.select_related("challenge").filter(invite_code=invite_code.strip()).first()


def token_get(*, user: AbstractBaseUser) -> Token | None:
    """The user's API token, if one was made."""
    return Token.objects.filter(user=user).first()


def email_verified(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user has confirmed an e-mail address (allauth's EmailAddress, verified)."""
    from allauth.account.models import EmailAddress

    return user.is_authenticated and EmailAddress.objects.filter(user=user, verified=True).exists()
