import hashlib

import requests
from django.core.cache import cache

from leaderboard.api_support import SubmitThrottle
from leaderboard.submissions.models import Submission, Upload

from .apiclient import assert_error, client_for


def start(client, phase, data: bytes, parts: int = 1, **fields):
    return client.post(f"/api/v1/phases/{phase.pk}/uploads/",
                       {"filename": "preds.zip", "size": len(data), "parts": parts, **fields}, format="json")


def split(data: bytes, parts: int) -> list[bytes]:
    size = -(-len(data) // parts)
    return [data[i * size:(i + 1) * size] for i in range(parts)]


def test_it_uploads_through_the_server_in_parts(alice, phase, prediction_zip, score):
    data = prediction_zip("perfect")
    client = client_for(alice)
    r = start(client, phase, data, parts=2)
    assert r.status_code == 201, r.content
    ticket = r.json()
    upload_id = ticket["id"]
    assert ticket["direct_to_s3"] is False and ticket["expires_at"].endswith("Z")
    assert [p["part_number"] for p in ticket["parts"]] == [1, 2]
    assert all(p["url"].startswith(f"http://testserver/api/v1/uploads/{upload_id}/parts/") for p in ticket["parts"])
    assert ticket["complete_url"] == f"http://testserver/api/v1/uploads/{upload_id}/complete/"
    assert ticket["abort_url"] == f"http://testserver/api/v1/uploads/{upload_id}/abort/"

    etags = []
    for part, chunk in zip(ticket["parts"], split(data, 2)):
        put = client_for().put(part["url"], chunk, content_type="application/octet-stream")  # no credentials
        assert put.status_code == 200
        etags.append({"PartNumber": part["part_number"], "ETag": put["ETag"]})
    assert not Submission.objects.exists()  # nothing, and no quota used, before completion

    done = client.post(ticket["complete_url"], {"sha256": hashlib.sha256(data).hexdigest(), "method_name": "Big",
                                                "method_url": "https://example.org", "parts": etags}, format="json")
    assert done.status_code == 201, done.content
    submission = Submission.objects.get()
    assert done.json()["id"] == submission.pk and done["Location"] == f"/api/v1/submissions/{submission.pk}/"
    assert (done.json()["method_name"], done.json()["status"]) == ("Big", "submitted")
    assert submission.file_sha256 == hashlib.sha256(data).hexdigest()
    assert score(submission).status == Submission.Status.FINISHED
    assert_error(client.post(ticket["complete_url"], {"sha256": "0" * 64, "method_name": "again"}, format="json"), 409)


def test_it_aborts_an_upload(alice, bob, phase, prediction_zip):
    client = client_for(alice)
    ticket = start(client, phase, prediction_zip("good")).json()
    assert_error(client_for(bob).post(ticket["abort_url"]), 404)  # not bob's
    r = client.post(ticket["abort_url"])
    assert r.status_code == 204 and r.content == b""
    assert Upload.objects.get().status == Upload.Status.ABORTED
    assert_error(client.post(ticket["abort_url"]), 409)
    assert not Submission.objects.exists()


def test_it_answers_anothers_upload_as_missing(alice, bob, phase, prediction_zip):
    ticket = start(client_for(alice), phase, prediction_zip("good")).json()
    missing = assert_error(client_for(bob).post(ticket["abort_url"].replace(ticket["id"][:8], "0" * 8)), 404)
    for url in (ticket["abort_url"], ticket["complete_url"]):
        assert assert_error(client_for(bob).post(url, {"sha256": "0" * 64, "method_name": "x"}, format="json"),
                            404) == missing
    assert Upload.objects.get().status == Upload.Status.PENDING


def test_it_lets_only_the_uploader_complete_an_upload(alice, organizer, phase, prediction_zip):
    data = prediction_zip("good")
    client = client_for(alice)
    ticket = start(client, phase, data).json()
    assert client_for().put(ticket["parts"][0]["url"], data, content_type="application/octet-stream").status_code == 200
    body = {"sha256": hashlib.sha256(data).hexdigest(), "method_name": "Big"}
    refused = assert_error(client_for(organizer).post(ticket["complete_url"], body, format="json"), 403)
    assert refused["error"] == "Only the person who started this upload can complete it."
    assert Upload.objects.get().status == Upload.Status.PENDING  # the uploader's parts are kept
    assert client.post(ticket["complete_url"], body, format="json").status_code == 201


def test_it_discards_a_file_whose_sha256_does_not_match(alice, phase, prediction_zip):
    data = prediction_zip("good")
    client = client_for(alice)
    ticket = start(client, phase, data).json()
    client_for().put(ticket["parts"][0]["url"], data, content_type="application/octet-stream")
    body = assert_error(client.post(ticket["complete_url"], {"sha256": "0" * 64, "method_name": "x"}, format="json"),
                        400)
    assert "sha256 does not match" in body["error"] and body["detail"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert Upload.objects.get().status == Upload.Status.ABORTED and not Submission.objects.exists()


def test_it_checks_the_request_before_any_byte_is_sent(alice, eve, phase, settings):
    assert_error(start(client_for(), phase, b"x"), 401)
    assert_error(start(client_for(eve), phase, b"x"), 403)
    assert_error(start(client_for(alice), phase, b"x", method_name="M", method_url="ftp://nope"), 400)
    assert "size" in assert_error(client_for(alice).post(f"/api/v1/phases/{phase.pk}/uploads/", {}, format="json"),
                                  400)["detail"]["fields"]
    settings.SUBMISSION_MAX_BYTES = 10
    assert assert_error(start(client_for(alice), phase, b"x" * 11), 413)["detail"]["limit"] == 10
    assert_error(client_for(alice).post("/api/v1/uploads/00000000-0000-0000-0000-000000000000/complete/",
                                        {"sha256": "0" * 64, "method_name": "x"}, format="json"), 404)
    assert not Upload.objects.exists()


def test_submissions_and_upload_starts_share_the_submit_throttle(alice, phase, prediction_zip, monkeypatch):
    cache.clear()
    monkeypatch.setitem(SubmitThrottle.THROTTLE_RATES, "submit", "1/min")  # DRF reads rates once, at import
    client = client_for(alice)
    assert start(client, phase, prediction_zip("good")).status_code == 201
    body = assert_error(client.post(f"/api/v1/phases/{phase.pk}/submissions/", {}, format="multipart"), 429)
    assert body["detail"]["retry_after"] > 0
    cache.clear()


def test_it_uploads_straight_to_s3(s3_server, phase_on_s3, alice, prediction_zip):
    data = prediction_zip("good")
    client = client_for(alice)
    ticket = start(client, phase_on_s3, data).json()
    assert ticket["direct_to_s3"] is True
    [part] = ticket["parts"]
    assert part["url"].startswith(s3_server.endpoint)
    put = requests.put(part["url"], data=data, timeout=30)  # the presigned URL carries the credentials
    assert put.status_code == 200, put.text
    done = client.post(ticket["complete_url"], {"sha256": hashlib.sha256(data).hexdigest(), "method_name": "S3",
                                                "parts": [{"PartNumber": 1, "ETag": put.headers["ETag"]}]},
                       format="json")
    assert done.status_code == 201, done.content
    submission = Submission.objects.get()
    assert submission.file.name == Upload.objects.get().key and submission.file.read() == data
