import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from leaderboard.submissions.models import Submission

from .apiclient import assert_error, client_for


def url(phase) -> str:
    return f"/api/v1/phases/{phase.pk}/submissions/"


@pytest.fixture
def form(prediction_zip):
    """Factory: the multipart fields of a submission, with the file as given."""

    def make(content: bytes | None = None, **overrides):
        data = {"file": SimpleUploadedFile("preds.zip", prediction_zip("good") if content is None else content,
                                           content_type="application/zip"),
                "method_name": "SAM-X", "method_description": "A method.", "method_url": "https://example.org/p",
                "code_url": "https://example.org/c"}
        data.update(overrides)
        return data

    return make


def test_it_accepts_a_submission(alice, phase, form):
    r = client_for(alice).post(url(phase), form(), format="multipart")
    assert r.status_code == 201, r.content
    submission = Submission.objects.get()
    body = r.json()
    assert r["Location"] == f"/api/v1/submissions/{submission.pk}/"
    assert (body["id"], body["status"], body["phase"]) == (submission.pk, "submitted", phase.pk)
    assert (body["team"], body["team_name"]) == (alice.memberships.get().team_id, "Team A")
    assert (body["method_name"], body["method_url"], body["is_public"], body["is_baseline"]) == (
        "SAM-X", "https://example.org/p", True, False)
    assert body["scores"] == {} and body["attempt"] == 1 and body["submitted_at"].endswith("Z")
    assert submission.user == alice


def test_it_keeps_a_submission_off_the_board_when_asked(alice, phase, form):
    r = client_for(alice).post(url(phase), form(is_public="false"), format="multipart")
    assert r.json()["is_public"] is False and not Submission.objects.get().is_public


def test_it_refuses_what_is_not_a_zip(alice, phase, form):
    body = assert_error(client_for(alice).post(url(phase), form(b"hello"), format="multipart"), 400)
    assert "not a zip" in body["error"]
    assert not Submission.objects.exists()


def test_it_asks_for_a_method_name_and_web_urls(alice, phase, form):
    data = form()
    del data["method_name"]
    assert assert_error(client_for(alice).post(url(phase), data, format="multipart"), 400)["error"] == (
        "method_name: This field is required.")
    body = assert_error(client_for(alice).post(url(phase), form(code_url="javascript:alert(1)"), format="multipart"),
                        400)
    assert "code URL" in body["error"]


def test_it_needs_a_token(phase, form):
    assert_error(client_for().post(url(phase), form(), format="multipart"), 401)


def test_it_needs_a_team(eve, phase, form):
    body = assert_error(client_for(eve).post(url(phase), form(), format="multipart"), 403)
    assert "team" in body["error"]


def test_it_refuses_a_closed_phase(alice, phase, form):
    phase.ends_at = timezone.now() - dt.timedelta(hours=1)
    phase.save()
    body = assert_error(client_for(alice).post(url(phase), form(), format="multipart"), 403)
    assert "closed" in body["error"]


def test_it_refuses_a_file_over_the_limit(alice, phase, form, settings):
    settings.SUBMISSION_MAX_BYTES = 100
    body = assert_error(client_for(alice).post(url(phase), form(), format="multipart"), 413)
    assert body["detail"]["limit"] == 100
    # Far over the limit: refused before the body is read.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = b"PK\x03\x04" + bytes(200_000)
    body = assert_error(client_for(alice).post(url(phase), form(big), format="multipart"), 413)
    assert body["error"].startswith("The request is") and body["detail"]["size"] > 200_000
    assert not Submission.objects.exists()


def test_it_refuses_form_fields_over_djangos_limit(alice, phase, form, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    data = form(method_description="x" * 5000)
    assert_error(client_for(alice).post(url(phase), data, format="multipart"), 413)


def test_it_says_when_the_daily_quota_resets(alice, phase, form, submit):
    phase.max_per_day = 1
    phase.save()
    submit(alice)
    r = client_for(alice).post(url(phase), form(), format="multipart")
    body = assert_error(r, 429)
    resets = (timezone.now() + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert body["detail"] == {"quota": "daily", "resets_at": resets.isoformat()}
    assert r["X-Quota-Resets-At"] == resets.isoformat()
    assert "Retry-After" not in r  # a quota is reported, never to be waited out by a generic client
    assert Submission.objects.count() == 1


def test_it_says_nothing_resets_a_used_total_quota(alice, phase, form, submit):
    phase.max_total = 1
    phase.save()
    submit(alice)
    r = client_for(alice).post(url(phase), form(), format="multipart")
    assert assert_error(r, 429)["detail"] == {"quota": "total", "resets_at": None}
    assert "Retry-After" not in r


def test_it_lets_organizers_add_baselines_only(organizer, alice, phase, form):
    r = client_for(organizer).post(url(phase), form(is_baseline="true"), format="multipart")
    assert r.status_code == 201 and r.json()["is_baseline"] is True and r.json()["team"] is None
    assert_error(client_for(alice).post(url(phase), form(is_baseline="true"), format="multipart"), 403)


def test_it_lists_the_teams_submissions(alice, bob, carol, eve, phase, submit):
    mine = [submit(alice, method_name="first"), submit(bob, method_name="second")]
    submit(carol)
    r = client_for(alice).get(url(phase))
    assert r.status_code == 200
    assert [s["id"] for s in r.json()] == [mine[1].pk, mine[0].pk]  # newest first
    assert_error(client_for(eve).get(url(phase)), 403)
    assert_error(client_for().get(url(phase)), 401)
    assert_error(client_for(alice).get("/api/v1/phases/999999/submissions/"), 404)


def test_it_cancels_a_submission_that_has_not_finished(alice, carol, phase, submit):
    submission = submit(alice)
    assert_error(client_for(carol).post(f"/api/v1/submissions/{submission.pk}/cancel/"), 404)
    r = client_for(alice).post(f"/api/v1/submissions/{submission.pk}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    body = assert_error(client_for(alice).post(f"/api/v1/submissions/{submission.pk}/cancel/"), 409)
    assert "already cancelled" in body["error"]
