"""Moderation: hide, flag, mark as baseline, rescore and disqualify, each through its service with a reason and
the acting user's right (MODERATE on the challenge), from the admin's buttons and list actions; the team is told
why; every change can be undone."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from leaderboard.challenges.models import Challenge, Host
from leaderboard.errors import ApplicationError, Conflict, NotAllowed
from leaderboard.submissions.models import BoardRow, Disqualification, Submission
from leaderboard.submissions.moderation import (
    submission_flag,
    submission_hide,
    submission_set_baseline,
    team_disqualify,
    team_reinstate,
)
from leaderboard.submissions.services import submission_rescore

from .conftest import make_user


@pytest.fixture
def hosts(challenge):
    """hector organizes this challenge, vera views it, olga organizes another one."""
    hector, vera, olga = make_user("hector"), make_user("vera"), make_user("olga")
    Host.objects.create(challenge=challenge, user=hector, role=Host.Role.ORGANIZER)
    Host.objects.create(challenge=challenge, user=vera, role=Host.Role.VIEWER)
    other = Challenge.objects.create(slug="other", title="Other")
    Host.objects.create(challenge=other, user=olga, role=Host.Role.ORGANIZER)
    return {"host": hector, "viewer": vera, "other_host": olga}


def board_teams(phase) -> list[str]:
    return list(BoardRow.objects.filter(phase=phase, split="overall").values_list("team_name", flat=True))


def press(client, submission, what: str, reason: str = "Looks copied"):
    return client.post(f"/admin/submissions/submission/{submission.pk}/moderate/{what}/", {"reason": reason})


def test_it_hides_and_shows_through_the_button_with_a_reason_the_team_sees(client, hosts, alice, submit, score,
                                                                           phase):
    submission = score(submit(alice))
    client.force_login(hosts["host"])
    response = press(client, submission, "hide", "Uses the test annotations")
    assert response.status_code == 302
    submission.refresh_from_db()
    assert (submission.hidden, submission.hidden_reason) == (True, "Uses the test annotations")
    assert board_teams(phase) == []

    client.force_login(alice)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "hidden by the organizers</strong>: Uses the test annotations" in page
    assert client.get(f"/api/v1/submissions/{submission.pk}/").json()["hidden_reason"] == "Uses the test annotations"

    client.force_login(hosts["host"])
    press(client, submission, "show", "Cleared after a talk")
    submission.refresh_from_db()
    assert (submission.hidden, submission.hidden_reason) == (False, "")
    assert board_teams(phase) == ["Team A"]


def test_it_flags_a_submission_that_stays_on_the_board(client, hosts, alice, carol, submit, score, phase):
    submission = score(submit(alice))
    client.force_login(hosts["host"])
    press(client, submission, "flag", "Same numbers as a paper")
    submission.refresh_from_db()
    assert (submission.flagged, submission.flag_reason) == (True, "Same numbers as a paper")
    assert board_teams(phase) == ["Team A"]  # flagged, not hidden
    assert set(BoardRow.objects.filter(phase=phase).values_list("flagged", flat=True)) == {True}
    board = client.get("/challenges/egomask/phases/test/leaderboard/overall/").content.decode()
    assert '<span class="badge flagged" title="flagged by the organizers">flagged</span>' in board
    assert client.get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()["rows"][0]["flagged"] is True

    client.force_login(alice)
    assert "flagged by the organizers</span>: Same numbers as a paper" in client.get(
        f"/submissions/{submission.pk}/").content.decode()
    detail = client.get(f"/api/v1/submissions/{submission.pk}/").json()
    assert (detail["flagged"], detail["flag_reason"]) == (True, "Same numbers as a paper")
    client.force_login(carol)  # another team sees the mark on a public submission, not the organizers' words
    other = client.get(f"/api/v1/submissions/{submission.pk}/").json()
    assert (other["flagged"], other["flag_reason"]) == (True, "")

    client.force_login(hosts["host"])
    press(client, submission, "unflag", "Explained")
    submission.refresh_from_db()
    assert (submission.flagged, submission.flag_reason) == (False, "")


def test_it_refuses_the_buttons_to_a_viewer_and_a_host_of_another_challenge(client, hosts, alice, submit, score):
    submission = score(submit(alice))
    client.force_login(hosts["viewer"])
    for what in ("hide", "flag", "rescore", "mark_baseline"):
        assert press(client, submission, what).status_code == 403
    client.force_login(hosts["other_host"])
    assert press(client, submission, "hide").status_code == 404
    submission.refresh_from_db()
    assert (submission.hidden, submission.flagged, submission.attempt, submission.is_baseline) == (False, False, 1,
                                                                                                   False)


def test_it_wants_a_reason(client, hosts, alice, submit, score):
    submission = score(submit(alice))
    client.force_login(hosts["host"])
    response = press(client, submission, "hide", "   ")
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Hide from leaderboards: give a reason (it is recorded in the audit log)."]
    submission.refresh_from_db()
    assert not submission.hidden
    with pytest.raises(ApplicationError, match="Give a reason"):
        submission_hide(submission=submission, by=hosts["host"], reason="")


def test_each_service_checks_the_acting_users_right(hosts, alice, submit, score, organizer):
    submission = score(submit(alice))
    for who in (hosts["viewer"], hosts["other_host"], alice, None):
        with pytest.raises(NotAllowed):
            submission_hide(submission=submission, by=who, reason="no")
        with pytest.raises(NotAllowed):
            submission_flag(submission=submission, by=who, reason="no")
        with pytest.raises(NotAllowed):
            submission_set_baseline(submission=submission, by=who, reason="no", is_baseline=True)
        with pytest.raises(NotAllowed):
            submission_rescore(submission=submission, by=who, reason="no")
    assert submission_set_baseline(submission=submission, by=hosts["host"], reason="reference",
                                   is_baseline=True).is_baseline
    assert submission_rescore(submission=submission, by=organizer, reason="new scorer").attempt == 2


def test_the_buttons_rescore_and_mark_a_baseline(client, hosts, alice, submit, score):
    submission = score(submit(alice))
    client.force_login(hosts["host"])
    press(client, submission, "rescore", "New scorer")
    press(client, submission, "mark_baseline", "The organizers' reference")
    submission.refresh_from_db()
    assert (submission.attempt, submission.status, submission.is_baseline) == (2, Submission.Status.SUBMITTED, True)
    press(client, submission, "unmark_baseline", "Not a reference after all")
    submission.refresh_from_db()
    assert not submission.is_baseline


def test_the_list_action_asks_for_the_reason_first(client, hosts, alice, carol, submit, score):
    first, second = score(submit(alice)), score(submit(carol))
    client.force_login(hosts["host"])
    asked = client.post("/admin/submissions/submission/", {"action": "hide",
                                                           "_selected_action": [first.pk, second.pk]})
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    assert not Submission.objects.filter(hidden=True).exists()
    client.post("/admin/submissions/submission/", {"action": "hide", "_selected_action": [first.pk, second.pk],
                                                   "reason": "Spam", "apply_reason": "Hide"})
    assert set(Submission.objects.values_list("hidden", "hidden_reason")) == {(True, "Spam")}


def test_it_disqualifies_a_team_and_reinstates_it(client, hosts, alice, carol, submit, score, phase):
    score(submit(alice)), score(submit(carol))
    assert sorted(board_teams(phase)) == ["Team A", "Team C"]
    team_a = alice.memberships.get().team
    client.force_login(hosts["host"])
    response = client.post("/admin/submissions/disqualification/add/",
                           {"phase": phase.pk, "team": team_a.pk, "reason": "Two accounts"})
    assert response.status_code == 302, response.content.decode()[:2000]
    standing = Disqualification.objects.get()
    assert (standing.by, standing.reason, standing.lifted_at) == (hosts["host"], "Two accounts", None)
    assert board_teams(phase) == ["Team C"]

    with pytest.raises(NotAllowed, match="disqualified from 'Test phase' by the organizers: Two accounts"):
        submit(alice)
    client.force_login(alice)
    assert "Disqualified from Test phase</strong> by the organizers: Two accounts" in client.get(
        f"/teams/{team_a.pk}/").content.decode()
    page = client.get("/challenges/egomask/phases/test/submit/").content.decode()
    assert "disqualified from &#x27;Test phase&#x27; by the organizers: Two accounts" in page

    client.force_login(hosts["host"])
    again = client.post("/admin/submissions/disqualification/add/",
                        {"phase": phase.pk, "team": team_a.pk, "reason": "Twice"})
    assert again.status_code == 200 and "already disqualified" in again.content.decode()

    client.post("/admin/submissions/disqualification/", {"action": "reinstate", "_selected_action": [standing.pk],
                                                         "reason": "Merged the accounts", "apply_reason": "Lift"})
    standing.refresh_from_db()
    assert (standing.lifted_by, standing.lift_reason) == (hosts["host"], "Merged the accounts")
    assert sorted(board_teams(phase)) == ["Team A", "Team C"]
    assert submit(alice).team == team_a  # admitted again


def test_disqualification_services_check_the_right_and_the_state(hosts, alice, phase, organizer):
    team = alice.memberships.get().team
    with pytest.raises(NotAllowed):
        team_disqualify(phase=phase, team=team, by=hosts["viewer"], reason="no")
    with pytest.raises(NotAllowed):
        team_disqualify(phase=phase, team=team, by=hosts["other_host"], reason="no")
    standing = team_disqualify(phase=phase, team=team, by=organizer, reason="Cheating")
    with pytest.raises(Conflict, match="already disqualified"):
        team_disqualify(phase=phase, team=team, by=organizer, reason="Again")
    with pytest.raises(NotAllowed):
        team_reinstate(disqualification=standing, by=hosts["viewer"], reason="no")
    team_reinstate(disqualification=standing, by=hosts["host"], reason="Appeal granted")
    with pytest.raises(Conflict, match="already lifted"):
        team_reinstate(disqualification=standing, by=hosts["host"], reason="Again")
    # Reversible both ways: a new disqualification after a lifted one.
    assert team_disqualify(phase=phase, team=team, by=organizer, reason="Again, for real").is_standing


def test_the_disqualification_admin_is_scoped_to_the_hosts_challenges(client, hosts, alice, phase, organizer):
    team = alice.memberships.get().team
    team_disqualify(phase=phase, team=team, by=organizer, reason="Cheating")
    client.force_login(hosts["other_host"])
    assert "Cheating" not in client.get("/admin/submissions/disqualification/").content.decode()
    refused = client.post("/admin/submissions/disqualification/add/",
                          {"phase": phase.pk, "team": team.pk, "reason": "Not my challenge"})
    assert refused.status_code == 200 and Disqualification.objects.count() == 1  # the phase is not a choice
    client.force_login(hosts["viewer"])
    assert "Cheating" in client.get("/admin/submissions/disqualification/").content.decode()
    assert client.get("/admin/submissions/disqualification/add/").status_code == 403
