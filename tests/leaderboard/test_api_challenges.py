import datetime as dt

from django.utils import timezone

from leaderboard.challenges.services import phase_create

from .apiclient import assert_error, client_for


def test_it_lists_challenges_with_their_phases(phase):
    phase.ends_at = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    phase.save()
    r = client_for().get("/api/v1/challenges/")
    assert r.status_code == 200
    [challenge] = r.json()
    assert {k: challenge[k] for k in ("id", "slug", "title", "description")} == {
        "id": phase.challenge_id, "slug": "egomask", "title": "EgoMask", "description": "Test challenge"}
    [item] = challenge["phases"]
    assert item["id"] == phase.pk and item["slug"] == "test" and item["name"] == "Test phase"
    assert item["challenge"] == "egomask"
    assert item["accepts_submissions"] is True and item["is_open"] is True
    assert (item["starts_at"], item["ends_at"]) == (None, "2031-01-02T03:04:05Z")
    assert (item["visibility"], item["reveal_at"], item["ranking_rule"]) == ("public", None, "best")
    assert item["primary_metric"] == "IoU_gold_pred"
    assert [s["code"] for s in item["splits"]] == ["short", "medium", "long", "overall"]
    assert all(isinstance(s["id"], int) for s in item["splits"])
    assert item["quota"] is None  # anonymous: no team, no quota


def test_it_says_a_closed_phase_accepts_nothing(phase):
    phase.ends_at = timezone.now() - dt.timedelta(minutes=1)
    phase.save()
    item = client_for().get(f"/api/v1/phases/{phase.pk}/").json()
    assert item["accepts_submissions"] is False and item["is_open"] is False


def test_it_shows_what_is_left_of_the_callers_quota(alice, bob, carol, phase, submit):
    phase.max_per_day, phase.max_total = 2, 5
    phase.save()
    submit(bob)  # a teammate's submission counts for the team
    tomorrow = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    [challenge] = client_for(alice).get("/api/v1/challenges/").json()
    assert challenge["phases"][0]["quota"] == {"per_day": 2, "per_day_left": 1, "total": 5, "total_left": 4,
                                               "resets_at": tomorrow}
    carols = client_for(carol).get(f"/api/v1/phases/{phase.pk}/").json()["quota"]
    assert (carols["per_day_left"], carols["total_left"]) == (2, 5)


def test_it_says_null_for_no_limit(alice, phase):
    quota = client_for(alice).get(f"/api/v1/phases/{phase.pk}/").json()["quota"]
    assert quota["per_day"] is None and quota["per_day_left"] is None and quota["total_left"] is None


def test_it_gives_one_challenge_by_id(phase):
    other = phase_create(challenge=phase.challenge, slug="final", name="Final", order=1)
    r = client_for().get(f"/api/v1/challenges/{phase.challenge_id}/")
    assert [p["id"] for p in r.json()["phases"]] == [phase.pk, other.pk]


def test_it_hides_an_unpublished_challenge_but_from_organizers(phase, organizer):
    phase.challenge.is_published = False
    phase.challenge.save()
    assert client_for().get("/api/v1/challenges/").json() == []
    assert_error(client_for().get(f"/api/v1/challenges/{phase.challenge_id}/"), 404)
    assert_error(client_for().get(f"/api/v1/phases/{phase.pk}/"), 404)
    assert client_for(organizer).get(f"/api/v1/phases/{phase.pk}/").status_code == 200


def test_it_lists_the_callers_teams(alice, bob, carol):
    [team] = client_for(alice).get("/api/v1/teams/").json()
    own = alice.memberships.get().team
    assert (team["id"], team["name"], team["challenge"], team["is_owner"]) == (own.pk, "Team A", "egomask", True)
    assert team["invite_code"] == own.invite_code
    assert [(m["username"], m["role"]) for m in team["members"]] == [("alice", "owner"), ("bob", "member")]
    assert client_for(bob).get("/api/v1/teams/").json()[0]["is_owner"] is False


def test_it_shows_a_team_only_to_its_members_and_organizers(alice, bob, carol, eve, organizer):
    team_id = alice.memberships.get().team_id
    assert client_for(alice).get(f"/api/v1/teams/{team_id}/").json()["invite_code"]
    seen = client_for(organizer).get(f"/api/v1/teams/{team_id}/").json()
    assert (seen["name"], seen["invite_code"], seen["is_owner"]) == ("Team A", None, False)
    assert [m["username"] for m in seen["members"]] == ["alice", "bob"]
    missing = assert_error(client_for(carol).get("/api/v1/teams/999999/"), 404)
    for outsider in (None, carol, eve):  # existence does not leak: the same answer as for no team
        body = assert_error(client_for(outsider).get(f"/api/v1/teams/{team_id}/"), 404)
        assert body["error"] == missing["error"].replace("999999", str(team_id))
    assert client_for(eve).get("/api/v1/teams/").json() == []
    assert_error(client_for().get("/api/v1/teams/"), 401)
    assert_error(client_for().get("/api/v1/teams/999999/"), 404)
