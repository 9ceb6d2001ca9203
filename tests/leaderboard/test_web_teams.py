import re

from leaderboard.accounts.models import Membership, Team
from leaderboard.submissions.models import Submission


def _team(user) -> Team:
    return user.memberships.get().team


def test_it_creates_a_team_from_the_challenge_page(client, eve, challenge):
    client.force_login(eve)
    r = client.post("/challenges/egomask/teams/", {"name": "Team E"})
    team = Team.objects.get(name="Team E")
    assert r.status_code == 302
    assert r.url == f"/teams/{team.pk}/"
    assert team.memberships.get().user == eve


def test_it_shows_why_a_team_was_not_created(client, alice, carol):
    client.force_login(carol)
    r = client.post("/challenges/egomask/teams/", {"name": "Another"}, follow=True)
    assert b"already in a team" in r.content
    assert not Team.objects.filter(name="Another").exists()


def test_it_needs_login_to_create_a_team(client, challenge):
    r = client.post("/challenges/egomask/teams/", {"name": "Team X"})
    assert r.status_code == 302
    assert r.url.startswith("/login/")


def test_it_shows_members_the_invite_link_and_code(client, alice, bob):
    team = _team(alice)
    client.force_login(bob)
    r = client.get(f"/teams/{team.pk}/")
    assert r.status_code == 200
    assert team.invite_code.encode() in r.content
    assert f"/teams/join/{team.invite_code}/".encode() in r.content
    assert b"alice" in r.content and b"bob" in r.content
    assert b"New invite code" not in r.content  # owner only


def test_it_answers_a_team_page_as_missing_to_anyone_but_its_members_and_organizers(client, alice, bob, carol, eve,
                                                                                   organizer):
    team = _team(alice)
    missing = client.get("/teams/999999/")
    assert missing.status_code == 404
    for outsider in (None, eve, carol):  # anonymous, no team, another team
        client.logout()
        if outsider is not None:
            client.force_login(outsider)
        r = client.get(f"/teams/{team.pk}/")
        assert r.status_code == 404, outsider
        for secret in (b"alice", b"bob", team.invite_code.encode(), b"Team A"):
            assert secret not in r.content, (outsider, secret)
    client.force_login(organizer)
    r = client.get(f"/teams/{team.pk}/")
    assert r.status_code == 200
    assert b"<strong>alice</strong>" in r.content and b"<strong>bob</strong>" in r.content
    assert team.invite_code.encode() not in r.content  # the code is a key to the team: members only
    assert b"Leave team" not in r.content


def test_it_joins_by_link_after_login_and_confirmation(client, alice, eve):
    team = _team(alice)
    link = f"/teams/join/{team.invite_code}/"
    r = client.get(link)
    assert r.status_code == 302
    assert r.url.startswith("/login/?next=")
    client.force_login(eve)
    r = client.get(link)
    assert r.status_code == 200
    assert b"Join Team A" in r.content
    assert not team.memberships.filter(user=eve).exists()  # a GET changes nothing
    r = client.post(link)
    assert r.status_code == 302
    assert r.url == f"/teams/{team.pk}/"
    assert team.memberships.filter(user=eve).exists()


def test_it_joins_with_a_typed_code(client, alice, eve):
    team = _team(alice)
    client.force_login(eve)
    r = client.post("/teams/join/", {"code": f"  {team.invite_code} ", "next": "/challenges/egomask/"})
    assert r.status_code == 302
    assert team.memberships.filter(user=eve).exists()


def test_it_explains_a_bad_code(client, eve, challenge):
    client.force_login(eve)
    r = client.post("/teams/join/", {"code": "nope", "next": "/challenges/egomask/"}, follow=True)
    assert r.redirect_chain[-1][0] == "/challenges/egomask/"
    assert b"invite code is not valid" in r.content
    assert client.get("/teams/join/nope/").status_code == 404


def test_it_refuses_to_join_a_second_team(client, alice, carol):
    r = client.post(f"/teams/join/{_team(alice).invite_code}/", follow=True)  # anonymous: to login
    assert r.redirect_chain[0][0].startswith("/login/")
    client.force_login(carol)
    r = client.post(f"/teams/join/{_team(alice).invite_code}/")
    assert r.status_code == 409
    assert not _team(alice).memberships.filter(user=carol).exists()
    for page in (r, client.get(f"/teams/join/{_team(alice).invite_code}/")):
        html = page.content.decode()
        # One warning that says why, and the button that cannot work is disabled and points at it.
        assert html.count('role="alert"') == 1
        assert re.search(r"You are in team\s+<a href=\"/teams/\d+/\">Team C</a>", html)
        assert "leave it first" in html
        assert re.search(r'<button type="submit" class="button primary" disabled aria-describedby="join-blocked">'
                         r"Join Team A</button>", html)


def test_it_leaves_a_team(client, alice, bob):
    team = _team(alice)
    client.force_login(alice)
    r = client.post(f"/teams/{team.pk}/leave/")
    assert r.status_code == 302
    assert r.url == "/challenges/egomask/"
    assert not team.memberships.filter(user=alice).exists()
    assert team.memberships.get(user=bob).role == Membership.Role.OWNER


def test_it_answers_leaving_a_team_one_may_not_see_as_missing(client, alice, eve):
    client.force_login(eve)
    assert client.post(f"/teams/{_team(alice).pk}/leave/").status_code == 404
    assert client.post(f"/teams/{_team(alice).pk}/invite-code/").status_code == 404
    assert _team(alice).memberships.count() == 1


def test_it_explains_to_an_organizer_that_they_are_not_in_the_team(client, alice, organizer):
    client.force_login(organizer)
    r = client.post(f"/teams/{_team(alice).pk}/leave/", follow=True)
    assert b"You are not in this team." in r.content


def test_it_makes_a_new_invite_code_for_the_owner(client, alice, bob):
    team = _team(alice)
    old = team.invite_code
    client.force_login(alice)
    r = client.post(f"/teams/{team.pk}/invite-code/", follow=True)
    team.refresh_from_db()
    assert team.invite_code != old
    assert team.invite_code.encode() in r.content
    assert client.get(f"/teams/join/{old}/").status_code == 404


def test_it_refuses_a_new_code_to_a_member(client, alice, bob):
    team = _team(alice)
    old = team.invite_code
    client.force_login(bob)
    r = client.post(f"/teams/{team.pk}/invite-code/", follow=True)
    assert b"Only the team&#x27;s owner" in r.content
    team.refresh_from_db()
    assert team.invite_code == old


def test_it_lists_my_teams(client, alice):
    client.force_login(alice)
    r = client.get("/teams/")
    assert b"Team A" in r.content


def test_it_links_a_submission_to_its_team_page_only_for_those_who_may_open_it(client, alice, carol, organizer,
                                                                              submit):
    submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.FINISHED)  # on the public board
    link = f'href="/teams/{_team(alice).pk}/"'.encode()
    for viewer, linked in ((None, False), (carol, False), (alice, True), (organizer, True)):
        client.logout()
        if viewer is not None:
            client.force_login(viewer)
        r = client.get(f"/submissions/{submission.pk}/")
        assert r.status_code == 200 and b"Team A" in r.content
        assert (link in r.content) is linked, viewer
