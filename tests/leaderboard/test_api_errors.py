"""Every error the API gives has one shape: {"error": "<sentence>", "detail": {...}}, with the right status."""

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from leaderboard.api_support import TokenThrottle

from .apiclient import assert_error, client_for


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def zip_form(content: bytes = b"PK\x03\x04", **fields):
    return {"file": SimpleUploadedFile("p.zip", content), "method_name": "M", **fields}


def test_400_invalid_input(alice, phase):
    body = assert_error(client_for(alice).post(f"/api/v1/phases/{phase.pk}/submissions/", {}, format="multipart"),
                        400)
    assert set(body["detail"]["fields"]) == {"file", "method_name"}
    assert_error(client_for().post("/api/v1/auth/token/", "{not json", content_type="application/json"), 400)


def test_401_without_a_valid_token(phase):
    assert_error(client_for().get(f"/api/v1/phases/{phase.pk}/submissions/"), 401)
    r = client_for().delete("/api/v1/auth/token/")
    assert_error(r, 401)
    assert r["WWW-Authenticate"] == "Token"


def test_403_not_your_team_or_closed(eve, alice, phase):
    assert_error(client_for(eve).post(f"/api/v1/phases/{phase.pk}/submissions/", zip_form(), format="multipart"),
                 403)
    phase.accepts_submissions = False
    phase.save()
    body = assert_error(client_for(alice).post(f"/api/v1/phases/{phase.pk}/uploads/", {"size": 10}, format="json"),
                        403)
    assert "does not accept submissions" in body["error"]


def test_404_for_objects_and_addresses(alice):
    assert_error(client_for(alice).get("/api/v1/phases/999999/"), 404)
    assert_error(client_for(alice).get("/api/v1/submissions/999999/"), 404)
    assert "end with a slash" in assert_error(client_for().get("/api/v1/challenges"), 404)["error"]
    assert_error(client_for().post("/api/v1/no/such/thing/"), 404)


def test_405_and_415(alice, phase):
    assert_error(client_for().put("/api/v1/challenges/"), 405)
    assert_error(client_for(alice).post(f"/api/v1/phases/{phase.pk}/submissions/", {"method_name": "M"},
                                        format="json"), 415)


def test_409_conflict(alice, phase, submit):
    submission = submit(alice)
    client_for(alice).post(f"/api/v1/submissions/{submission.pk}/cancel/")
    assert_error(client_for(alice).post(f"/api/v1/submissions/{submission.pk}/cancel/"), 409)


def test_413_too_large(alice, phase, settings):
    settings.SUBMISSION_MAX_BYTES = 3
    assert_error(client_for(alice).post(f"/api/v1/phases/{phase.pk}/submissions/", zip_form(), format="multipart"),
                 413)


def test_429_quota_and_throttle(alice, phase, submit, monkeypatch):
    phase.max_total = 1
    phase.save()
    submit(alice)
    assert_error(client_for(alice).post(f"/api/v1/phases/{phase.pk}/submissions/", zip_form(), format="multipart"),
                 429)
    monkeypatch.setitem(TokenThrottle.THROTTLE_RATES, "token", "1/hour")
    client_for().post("/api/v1/auth/token/", {"username": "alice", "password": "x"}, format="json")
    assert_error(client_for().post("/api/v1/auth/token/", {"username": "alice", "password": "x"}, format="json"), 429)
