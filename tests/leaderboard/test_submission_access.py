"""Who may see what of a submission, and do what with it: one table, asked of the selector and of every
interface (the API, the web page, the evalai routes), which must all agree with it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from leaderboard.submissions.models import Submission
from leaderboard.submissions.selectors import Access, submission_access

from .apiclient import client_for

PERSONAS = ("owner", "teammate", "other_team", "outsider", "anonymous", "organizer")
FLAGS = ("view", "diagnostics", "details", "cancel", "set_public", "edit")
WARNING = {"code": "unknown_video", "message": "video x is not in the benchmark", "location": {"video": "x"}}

# Per state, per persona: the flags that are true (the others are false).
TEAM_FINISHED = {"view", "diagnostics", "set_public", "edit"}
ORGANIZER = {"view", "diagnostics", "details"}
PRIVATE = {"owner": TEAM_FINISHED, "teammate": TEAM_FINISHED, "other_team": set(), "outsider": set(),
           "anonymous": set(), "organizer": ORGANIZER}
PUBLIC = {"owner": TEAM_FINISHED, "teammate": TEAM_FINISHED, "other_team": {"view"}, "outsider": {"view"},
          "anonymous": {"view"}, "organizer": ORGANIZER}
TABLE: dict[str, dict[str, set[str]]] = {
    "finished public": PUBLIC,
    "board revealed": PUBLIC,
    "phase shows per-video results": {**PUBLIC, "owner": TEAM_FINISHED | {"details"},
                                      "teammate": TEAM_FINISHED | {"details"}},
    "finished private": PRIVATE,
    "hidden": PRIVATE,
    "board private before reveal": PRIVATE,
    "failed": {**PRIVATE, "owner": {"view", "diagnostics", "edit"}, "teammate": {"view", "diagnostics", "edit"}},
    "queued": {**PRIVATE, "owner": TEAM_FINISHED | {"cancel"}, "teammate": TEAM_FINISHED | {"cancel"},
               "organizer": ORGANIZER | {"cancel"}},
    "baseline": {"owner": {"view"}, "teammate": {"view"}, "other_team": {"view"}, "outsider": {"view"},
                 "anonymous": {"view"}, "organizer": ORGANIZER},
    # The phase runs the Ladder and has not ended: the same flags, but exact scores (LADDER_RUNNING) and, even
    # where the phase shows per-video results, the details (they would give the exact score away) are the
    # organizers' alone. A baseline is shown exactly, on the boards and on its page.
    "ladder running": PUBLIC,
    "ladder running with per-video results": PUBLIC,
    "baseline under the Ladder": {"owner": {"view"}, "teammate": {"view"}, "other_team": {"view"},
                                  "outsider": {"view"}, "anonymous": {"view"}, "organizer": ORGANIZER},
    "ladder ended": PUBLIC,
}
ROWS = [(state, persona) for state in TABLE for persona in PERSONAS]


@pytest.fixture
def people(alice, bob, carol, eve, organizer):
    return {"owner": alice, "teammate": bob, "other_team": carol, "outsider": eve, "anonymous": None,
            "organizer": organizer}


@pytest.fixture
def make_state(alice, organizer, submit, phase):
    """Factory: a submission of Team A (alice's) in the given state (a baseline is the organizer's)."""

    def make(state: str) -> Submission:
        if state.startswith("baseline"):
            submission = submit(organizer, method_name="Baseline", is_baseline=True)
        else:
            submission = submit(alice, is_public=state != "finished private")
        fields = {"status": Submission.Status.FINISHED, "warnings": [WARNING]}
        if "ladder" in state.lower():  # once submitted: an ended phase takes no submission
            phase.ladder, phase.ends_at = True, timezone.now() + dt.timedelta(days=-1 if state == "ladder ended" else 7)
            phase.save()
        if state == "hidden":
            fields["hidden"] = True
        elif state == "failed":
            fields.update(status=Submission.Status.FAILED, failure_message="Your submission could not be scored: x.")
        elif state == "queued":
            fields["status"] = Submission.Status.SUBMITTED
        elif state in ("board private before reveal", "board revealed"):
            later = dt.timedelta(days=1 if state == "board private before reveal" else -1)
            phase.visibility, phase.reveal_at = "private", timezone.now() + later
            phase.save()
        elif state in ("phase shows per-video results", "ladder running with per-video results"):
            phase.show_expression_details = True
            phase.save()
        Submission.objects.filter(pk=submission.pk).update(**fields)
        return Submission.objects.select_related("phase__challenge", "team").get(pk=submission.pk)

    return make


LADDER_RUNNING: set[str] = {"ladder running", "ladder running with per-video results"}  # only organizers see
# the exact scores there


def expected(state: str, persona: str) -> Access:
    return Access(**{flag: flag in TABLE[state][persona] for flag in FLAGS},
                  exact_scores=persona == "organizer" or state not in LADDER_RUNNING)


@pytest.mark.parametrize(("state", "persona"), ROWS)
def test_it_answers_each_persona_for_each_state(people, make_state, state, persona):
    submission = make_state(state)
    user = people[persona] or AnonymousUser()
    assert submission_access(submission=submission, user=user) == expected(state, persona)


def _web(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _evalai(user) -> Client:
    if user is None:
        return Client()
    return Client(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")


@pytest.mark.parametrize(("state", "persona"), ROWS)
def test_every_interface_agrees_with_the_table(people, make_state, state, persona):
    submission = make_state(state)
    user = people[persona]
    want = expected(state, persona)

    api = client_for(user).get(f"/api/v1/submissions/{submission.pk}/")
    page = _web(user).get(f"/submissions/{submission.pk}/")
    evalai = _evalai(user).get(f"/api/jobs/submission/{submission.pk}/")
    assert (api.status_code, page.status_code, evalai.status_code) == ((200, 200, 200) if want.view else
                                                                        (404, 404, 406))
    if not want.view:
        return
    html = page.content.decode()
    assert (api.json()["warnings"] == [WARNING]) is want.diagnostics
    assert ("unknown_video" in html) is want.diagnostics
    assert (evalai.json().get("warnings") == [WARNING]) is want.diagnostics
    assert ("failure_message" in evalai.json()) is want.diagnostics
    assert ("Per-video results" in html) is want.details
    assert ("Cancel submission" in html) is want.cancel
    assert ("the public board</button>" in html) is want.set_public
    assert ("Edit the method details" in html) is want.edit
    ladder = "This phase uses the Ladder: exact scores are revealed when the phase ends on"
    assert api.json()["ladder"].startswith(ladder) is not want.exact_scores
    assert (ladder in html) is not want.exact_scores
    assert ("ladder" in evalai.json()) is not want.exact_scores
    patched = client_for(user).patch(f"/api/v1/submissions/{submission.pk}/", {"method_name": "Renamed"},
                                     format="json")
    assert patched.status_code == (200 if want.edit else 401 if user is None else 403)


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_answers_a_missing_submission_as_one_it_may_not_see(people, phase, persona):
    user = people[persona]
    assert client_for(user).get("/api/v1/submissions/999999/").status_code == 404
    assert _web(user).get("/submissions/999999/").status_code == 404
    assert _evalai(user).get("/api/jobs/submission/999999").status_code == 406
