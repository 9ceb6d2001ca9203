"""Writes for users and teams."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from leaderboard.challenges.models import Challenge
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, NotFound

from .models import Membership, Team, new_invite_code


def team_create(*, challenge: Challenge, user: AbstractBaseUser, name: str) -> Team:
    name = name.strip()
    if not name:
        raise ApplicationError("Give the team a name.")
    if len(name) > Team._meta.get_field("name").max_length:
        raise ApplicationError("The team name is longer than 100 characters.")
    try:
        with transaction.atomic():
            if Membership.objects.filter(user=user, challenge=challenge).exists():
                raise Conflict("You are already in a team for this challenge; leave it first.")
            team = Team.objects.create(challenge=challenge, name=name, created_by=user)
            Membership.objects.create(team=team, user=user, challenge=challenge, role=Membership.Role.OWNER)
    except IntegrityError:
        raise Conflict(f"A team named {name!r} already exists in this challenge.") from None
    return team


def team_join(*, user: AbstractBaseUser, invite_code: str) -> Team:
    team = Team.objects.select_related("challenge").filter(invite_code=invite_code.strip()).first()
    if team is None:
        raise NotFound("This invite code is not valid (it may have been replaced); ask your team for a new one.")
    try:
        with transaction.atomic():
            current = Membership.objects.filter(user=user, challenge=team.challenge).select_related("team").first()
            if current is not None:
                if current.team_id == team.pk:
                    return team
                raise Conflict(f"You are already in team {current.team.name} for this challenge; leave it first.")
            Membership.objects.create(team=team, user=user, challenge=team.challenge)
    except IntegrityError:
        raise Conflict("You are already in a team for this challenge.") from None
    return team


def team_leave(*, user: AbstractBaseUser, team: Team) -> None:
    """Leave a team. The team and its submissions stay; an owner's role passes to the oldest member."""
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(user=user, team=team).first()
        if membership is None:
            raise NotAllowed("You are not in this team.")
        membership.delete()
        if membership.role == Membership.Role.OWNER:
            heir = team.memberships.order_by("joined_at", "id").first()
            if heir is not None:
                heir.role = Membership.Role.OWNER
                heir.save(update_fields=["role"])


def team_new_invite_code(*, user: AbstractBaseUser, team: Team) -> str:
    """Replace the invite code (the old link stops working). Owners only."""
    if not team.memberships.filter(user=user, role=Membership.Role.OWNER).exists():
        raise NotAllowed("Only the team's owner can replace the invite code.")
    team.invite_code = new_invite_code()
    team.save(update_fields=["invite_code"])
    return team.invite_code


# --- API tokens (one per user; the key is the secret, so rotating means a new row) ---


def token_obtain(*, username: str, password: str) -> Token:
    """The API token of the user with these credentials (made if missing).

    One message whether the name is unknown or the password wrong, so the answer does not tell
    which user names exist; inactive users get the same answer.
    """
    user = authenticate(username=username.strip(), password=password)
    if user is None:
        raise ApplicationError("The user name or password is not right; check both and try again.")
    return token_get_or_create(user=user)


def token_get_or_create(*, user: AbstractBaseUser) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


def token_rotate(*, user: AbstractBaseUser) -> Token:
    """Replace the user's token with a new one; the old one stops working at once."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()  # two rotations queue up
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def token_revoke(*, user: AbstractBaseUser) -> bool:
    """Delete the user's token (True if there was one); the API refuses it from now on."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
