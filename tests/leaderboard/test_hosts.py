"""Per-challenge organizers: the one permission rule (challenges.permissions), and the admin that asks it for
every page, row and action. The authorization table (test_authorization.py) probes every URL with a host,
a viewer and another challenge's host; this file checks the rule itself and what the table cannot see."""

from __future__ import annotations

import itertools

import pytest
from bs4 import BeautifulSoup
from django.contrib.messages import get_messages

from leaderboard.challenges.models import Challenge, Host
from leaderboard.challenges.permissions import GRANTS, Can, challenges_where, organizer_can, organizes_anything
from leaderboard.challenges.services import phase_create
from leaderboard.submissions.models import Submission

from .conftest import PASSWORD, make_user

# What each role may do, written out (GRANTS is what the code uses; this is what we mean).
EXPECTED = {
    Host.Role.VIEWER: {Can.VIEW},
    Host.Role.ORGANIZER: {Can.VIEW, Can.MODERATE, Can.CONFIGURE},
    Host.Role.OWNER: {Can.VIEW, Can.MODERATE, Can.CONFIGURE, Can.MANAGE_HOSTS},
}


@pytest.fixture
def other_challenge(db) -> Challenge:
    return Challenge.objects.create(slug="other", title="Another challenge")


def host_of(challenge: Challenge, username: str, role: str):
    user = make_user(username)
    Host.objects.create(challenge=challenge, user=user, role=role)
    return user


@pytest.mark.parametrize("role", list(Host.Role))
def test_it_grants_each_role_what_it_means_on_its_challenge_and_nothing_on_another(challenge, other_challenge,
                                                                                    role):
    user = host_of(challenge, f"h-{role}", role)
    assert GRANTS[role] == EXPECTED[role]
    for what in Can:
        assert organizer_can(user, challenge, what) is (what in EXPECTED[role]), what
        assert organizer_can(user, challenge.pk, what) is (what in EXPECTED[role]), what  # by id too
        assert organizer_can(user, other_challenge, what) is False, what
        # The query form says the same as the question form.
        assert list(challenges_where(user, what)) == ([challenge] if what in EXPECTED[role] else [])
    assert organizes_anything(user)


def test_it_gives_staff_every_challenge_and_participants_none(challenge, other_challenge, organizer, alice):
    for what, target in itertools.product(Can, (challenge, other_challenge)):
        assert organizer_can(organizer, target, what)
        assert not organizer_can(alice, target, what)
        assert not organizer_can(None, target, what)
    assert set(challenges_where(organizer, Can.MANAGE_HOSTS)) == {challenge, other_challenge}
    assert not challenges_where(alice, Can.VIEW).exists()
    assert organizes_anything(organizer) and not organizes_anything(alice)


def test_it_takes_everything_from_a_deactivated_host(challenge):
    user = host_of(challenge, "gone", Host.Role.OWNER)
    user.is_active = False
    user.save()
    assert not any(organizer_can(user, challenge, what) for what in Can)
    assert not challenges_where(user, Can.VIEW).exists()
    assert not organizes_anything(user)


def test_it_lets_a_host_log_in_to_the_admin_and_tells_a_participant_no(client, challenge, alice):
    host_of(challenge, "hector", Host.Role.VIEWER)
    refused = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 200 and b"Please enter the correct username and password" in refused.content
    entered = client.post("/admin/login/?next=/admin/", {"username": "hector", "password": PASSWORD})
    assert entered.status_code == 302 and entered["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200 and b"Challenges you run" in index.content
    # Their models are listed; the site's accounts and tokens are staff's.
    assert b"/admin/submissions/submission/" in index.content and b"/admin/auth/user/" not in index.content


def _other_submission(other_challenge: Challenge, phase, user) -> Submission:
    other_phase = phase_create(challenge=other_challenge, slug="p", name="Other phase", ground_truth=phase.ground_truth)
    return Submission.objects.create(phase=other_phase, user=user, file="submissions/x.zip", file_sha256="0" * 64,
                                     method_name="Method of the other challenge", status=Submission.Status.FINISHED)


def test_it_lists_only_the_rows_of_the_hosts_challenges(client, challenge, other_challenge, phase, alice, submit):
    mine = submit(alice, method_name="Method of this challenge")
    theirs = _other_submission(other_challenge, phase, alice)
    client.force_login(host_of(challenge, "hector", Host.Role.VIEWER))
    listing = client.get("/admin/submissions/submission/").content.decode()
    assert "Method of this challenge" in listing and "Method of the other challenge" not in listing
    # Another challenge's row is answered as one that does not exist (sent to the index), never shown.
    assert client.get(f"/admin/submissions/submission/{theirs.pk}/change/").status_code == 302
    assert client.get(f"/admin/submissions/submission/{mine.pk}/change/").status_code == 200
    challenges = client.get("/admin/challenges/challenge/").content.decode()
    assert f"/admin/challenges/challenge/{challenge.pk}/change/" in challenges
    assert f"/admin/challenges/challenge/{other_challenge.pk}/change/" not in challenges


def test_it_refuses_a_moderation_on_a_challenge_the_host_only_views(client, challenge, other_challenge, phase, alice,
                                                                      submit):
    # A viewer here and an organizer there: the hide action is offered (it may hide there), but not here.
    user = host_of(challenge, "hector", Host.Role.VIEWER)
    Host.objects.create(challenge=other_challenge, user=user, role=Host.Role.ORGANIZER)
    mine = submit(alice)
    theirs = _other_submission(other_challenge, phase, alice)
    client.force_login(user)
    response = client.post("/admin/submissions/submission/",
                           {"action": "hide", "_selected_action": [mine.pk, theirs.pk], "reason": "Spam",
                            "apply_reason": "Hide"}, follow=True)
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("you do not organize its challenge with that right" in m for m in said), said
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert not mine.hidden and theirs.hidden


def test_it_shows_a_viewer_the_phase_read_only(client, challenge, phase):
    client.force_login(host_of(challenge, "vera", Host.Role.VIEWER))
    page = client.get(f"/admin/challenges/phase/{phase.pk}/change/")
    assert page.status_code == 200
    form = BeautifulSoup(page.content, "html.parser").find("form", id="phase_form")
    assert form is not None and form.find("input", attrs={"name": "max_per_day"}) is None  # no field to change
    refused = client.post(f"/admin/challenges/phase/{phase.pk}/change/", {"name": "Renamed"})
    assert refused.status_code == 403
    phase.refresh_from_db()
    assert phase.name == "Test phase"


def _challenge_form(client, challenge: Challenge) -> tuple[dict[str, object], BeautifulSoup]:
    page = BeautifulSoup(client.get(f"/admin/challenges/challenge/{challenge.pk}/change/").content, "html.parser")
    form = page.find("form", id="challenge_form")
    data: dict[str, object] = {}
    for field in form.find_all(["input", "textarea", "select"]):
        name = field.get("name")
        if not name or field.get("type") in ("submit", "file"):
            continue
        if field.name == "textarea":
            data[name] = field.text
        elif field.name == "select":
            chosen = field.find("option", selected=True)
            data[name] = chosen.get("value") if chosen else ""
        elif field.get("type") == "checkbox":
            if field.has_attr("checked"):
                data[name] = "on"
        else:
            data[name] = field.get("value", "")
    return data, form


def test_it_lets_the_owner_choose_the_hosts_and_not_an_organizer(client, challenge):
    owner = host_of(challenge, "olive", Host.Role.OWNER)
    organizer = host_of(challenge, "oscar", Host.Role.ORGANIZER)
    newcomer = make_user("nadia")

    client.force_login(organizer)
    data, form = _challenge_form(client, challenge)
    assert form.find("input", attrs={"name": "hosts-0-user"}) is None  # the hosts are shown, not editable
    client.force_login(owner)
    data, form = _challenge_form(client, challenge)
    total = int(data["hosts-TOTAL_FORMS"])
    data.update({"hosts-TOTAL_FORMS": total + 1, f"hosts-{total}-user": "nadia",
                 f"hosts-{total}-role": Host.Role.VIEWER, f"hosts-{total}-challenge": challenge.pk})
    response = client.post(f"/admin/challenges/challenge/{challenge.pk}/change/", data)
    assert response.status_code == 302, [(f.formset.errors, f.formset.non_form_errors())
                                         for f in response.context["inline_admin_formsets"]]
    added = Host.objects.get(challenge=challenge, user=newcomer)
    assert added.role == Host.Role.VIEWER and added.added_by == owner
    assert organizer_can(newcomer, challenge, Can.VIEW) and not organizer_can(newcomer, challenge, Can.MODERATE)

    # An unknown username is a sentence on the form, not an error page.
    data, _ = _challenge_form(client, challenge)
    total = int(data["hosts-TOTAL_FORMS"])
    data.update({"hosts-TOTAL_FORMS": total + 1, f"hosts-{total}-user": "nobody-here",
                 f"hosts-{total}-role": Host.Role.VIEWER})
    response = client.post(f"/admin/challenges/challenge/{challenge.pk}/change/", data)
    assert response.status_code == 200 and b"No active user has this username." in response.content


def test_it_files_a_hosts_new_phase_under_their_challenge_only(client, challenge, other_challenge):
    client.force_login(host_of(challenge, "oscar", Host.Role.ORGANIZER))
    page = BeautifulSoup(client.get("/admin/challenges/phase/add/").content, "html.parser")
    choices = {o.get("value") for o in page.find("select", attrs={"name": "challenge"}).find_all("option")} - {""}
    assert choices == {str(challenge.pk)}


def test_it_shows_the_admin_link_to_hosts_only(client, challenge, alice):
    client.force_login(alice)
    assert b'href="/admin/"' not in client.get("/").content
    client.force_login(host_of(challenge, "vera", Host.Role.VIEWER))
    assert b'href="/admin/"' in client.get("/").content
