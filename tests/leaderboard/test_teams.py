"""Teams: create, join by invite code, one team per challenge, leave, replace the invite code."""

from __future__ import annotations

import datetime as dt

import pytest

from leaderboard.accounts.models import Membership, Team
from leaderboard.accounts.selectors import team_for, team_members
from leaderboard.accounts.services import team_create, team_join, team_leave, team_new_invite_code
from leaderboard.challenges.models import Challenge
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, NotFound
from leaderboard.submissions.models import Submission
from tests.leaderboard.conftest import make_user


def _team(user) -> Team:
    return user.memberships.get().team


def _roles(team: Team) -> dict[str, str]:
    return {m.user.username: m.role for m in team_members(team=team)}


def test_it_creates_a_team_with_its_creator_as_owner(challenge, eve):
    team = team_create(challenge=challenge, user=eve, name="  Team E  ")
    assert team.name == "Team E"
    assert team.challenge == challenge
    assert team.created_by == eve
    assert _roles(team) == {"eve": Membership.Role.OWNER}
    assert team_for(user=eve, challenge=challenge) == team
    assert len(team.invite_code) >= 16


def test_it_requires_a_team_name(challenge, eve):
    with pytest.raises(ApplicationError, match="name"):
        team_create(challenge=challenge, user=eve, name="   ")
    assert Team.objects.count() == 0


def test_it_refuses_a_name_taken_in_the_same_challenge(alice, challenge, eve):
    with pytest.raises(Conflict, match="Team A"):
        team_create(challenge=challenge, user=eve, name="Team A")
    assert team_for(user=eve, challenge=challenge) is None
    assert Team.objects.filter(challenge=challenge).count() == 1


def test_it_allows_the_same_name_in_another_challenge(alice, eve):
    other = Challenge.objects.create(slug="other", title="Other")
    assert team_create(challenge=other, user=eve, name="Team A").challenge == other


def test_it_joins_a_team_by_invite_code(alice, challenge, eve):
    team = _team(alice)
    assert team_join(user=eve, invite_code=f"  {team.invite_code} ") == team
    assert _roles(team) == {"alice": Membership.Role.OWNER, "eve": Membership.Role.MEMBER}
    assert team_for(user=eve, challenge=challenge) == team


def test_it_treats_joining_your_own_team_again_as_done(alice, bob):
    team = _team(alice)
    assert team_join(user=bob, invite_code=team.invite_code) == team
    assert team.memberships.filter(user=bob).count() == 1


def test_it_refuses_an_unknown_invite_code(alice, eve):
    with pytest.raises(NotFound):
        team_join(user=eve, invite_code="not-a-code")
    assert eve.memberships.count() == 0


def test_it_keeps_one_team_per_challenge(alice, carol, challenge):
    with pytest.raises(Conflict, match="Team C"):
        team_join(user=carol, invite_code=_team(alice).invite_code)
    with pytest.raises(Conflict):
        team_create(challenge=challenge, user=alice, name="Team A2")
    assert team_for(user=carol, challenge=challenge).name == "Team C"
    assert Team.objects.filter(name="Team A2").exists() is False


def test_it_allows_a_team_in_each_challenge(alice):
    other = Challenge.objects.create(slug="other", title="Other")
    team = team_create(challenge=other, user=alice, name="Team A elsewhere")
    assert team_for(user=alice, challenge=other) == team
    assert alice.memberships.count() == 2


def test_it_passes_ownership_to_the_oldest_member_when_the_owner_leaves(alice, bob, challenge):
    team = _team(alice)
    dave = make_user("dave")
    team_join(user=dave, invite_code=team.invite_code)
    # dave joined after bob, but make him the oldest member: joined_at decides, not the row id.
    base = team.memberships.get(user=alice).joined_at
    Membership.objects.filter(user=dave).update(joined_at=base + dt.timedelta(seconds=1))
    Membership.objects.filter(user=bob).update(joined_at=base + dt.timedelta(seconds=2))

    team_leave(user=alice, team=team)

    assert _roles(team) == {"dave": Membership.Role.OWNER, "bob": Membership.Role.MEMBER}
    assert team_for(user=alice, challenge=challenge) is None


def test_it_keeps_the_owner_when_a_member_leaves(alice, bob):
    team = _team(alice)
    team_leave(user=bob, team=team)
    assert _roles(team) == {"alice": Membership.Role.OWNER}


def test_it_keeps_the_team_and_its_submissions_when_the_last_member_leaves(alice, submit, challenge):
    submission = submit(alice)
    team = _team(alice)
    team_leave(user=alice, team=team)
    assert Team.objects.filter(pk=team.pk).exists()
    assert team.memberships.count() == 0
    assert Submission.objects.get(pk=submission.pk).team == team
    # Having left, alice may start another team.
    assert team_create(challenge=challenge, user=alice, name="Team A bis").name == "Team A bis"


def test_it_refuses_to_let_an_outsider_leave(alice, carol):
    with pytest.raises(NotAllowed):
        team_leave(user=carol, team=_team(alice))
    assert _roles(_team(alice)) == {"alice": Membership.Role.OWNER}


def test_it_replaces_the_invite_code_for_the_owner(alice, bob, eve, challenge):
    team = _team(alice)
    old = team.invite_code
    new = team_new_invite_code(user=alice, team=team)
    assert new != old
    assert Team.objects.get(pk=team.pk).invite_code == new
    with pytest.raises(NotFound):
        team_join(user=eve, invite_code=old)
    assert team_join(user=eve, invite_code=new) == team


def test_it_refuses_a_new_invite_code_to_a_member_or_outsider(alice, bob, carol):
    team = _team(alice)
    old = team.invite_code
    for user in (bob, carol):
        with pytest.raises(NotAllowed, match="owner"):
            team_new_invite_code(user=user, team=team)
    assert Team.objects.get(pk=team.pk).invite_code == old


def test_it_lets_the_new_owner_replace_the_invite_code(alice, bob):
    team = _team(alice)
    team_leave(user=alice, team=team)
    with pytest.raises(NotAllowed):
        team_new_invite_code(user=alice, team=team)
    assert team_new_invite_code(user=bob, team=team) == Team.objects.get(pk=team.pk).invite_code
