"""Large uploads in parts: through this server (no S3) and straight to a real S3 server."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import pytest
import requests
from django.utils import timezone

from leaderboard.errors import ApplicationError, Conflict, NotAllowed, QuotaExceeded
from leaderboard.submissions.models import Submission, Upload
from leaderboard.submissions.uploads import (
    upload_abort,
    upload_complete,
    upload_receive_part,
    upload_start,
    uploads_cleanup,
)

PART = 5 * 1024 * 1024  # S3's smallest part (except the last)


def split(data: bytes, parts: int) -> list[bytes]:
    size = -(-len(data) // parts)
    return [data[i * size:(i + 1) * size] for i in range(parts)]


def send_local(ticket, data: bytes, client) -> list[dict]:
    """PUT each part to this server the way a client without credentials would."""
    etags = []
    for target, chunk in zip(ticket.parts, split(data, len(ticket.parts))):
        response = client.put(target.url, data=chunk, content_type="application/octet-stream")
        assert response.status_code == 200, response.content
        etags.append({"PartNumber": target.part_number, "ETag": response["ETag"]})
    return etags


def test_it_uploads_in_parts_through_the_server_and_scores(client, alice, phase, prediction_zip, score):
    data = prediction_zip("perfect")
    ticket = upload_start(phase=phase, user=alice, filename="p.zip", size=len(data), parts=3)
    assert not ticket.direct_to_s3 and [t.part_number for t in ticket.parts] == [1, 2, 3]
    etags = send_local(ticket, data, client)
    assert all(e["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"' for e, chunk in zip(etags, split(data, 3)))
    assert Submission.objects.count() == 0  # nothing exists, and no quota is used, before completion

    submission = upload_complete(upload=ticket.upload, user=alice, method_name="Large",
                                 sha256=hashlib.sha256(data).hexdigest(), parts=etags)
    assert (submission.file_sha256, submission.file_size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert submission.file.read() == data
    assert score(submission).status == Submission.Status.FINISHED
    ticket.upload.refresh_from_db()
    assert (ticket.upload.status, ticket.upload.submission_id) == (Upload.Status.COMPLETED, submission.pk)


def test_it_refuses_a_part_with_a_forged_or_foreign_signature(client, alice, phase):
    ticket = upload_start(phase=phase, user=alice, parts=2)
    first, second = ticket.parts
    assert client.put(first.url.replace("sig=", "sig=x"), data=b"x", content_type="application/zip").status_code == 403
    forged = second.url.split("?")[0] + "?" + first.url.split("?")[1]  # part 1's signature on part 2
    assert client.put(forged, data=b"x", content_type="application/zip").status_code == 403
    with pytest.raises(NotAllowed):
        upload_receive_part(upload_id=ticket.upload.pk, part_number=1, signature="nope", stream=io.BytesIO(b""))


def test_it_discards_an_upload_whose_sha256_does_not_match(client, alice, phase, prediction_zip, settings):
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, size=len(data), parts=1)
    etags = send_local(ticket, data, client)
    with pytest.raises(ApplicationError, match="sha256 does not match"):
        upload_complete(upload=ticket.upload, user=alice, method_name="x", sha256="0" * 64, parts=etags)
    ticket.upload.refresh_from_db()
    assert ticket.upload.status == Upload.Status.ABORTED
    assert Submission.objects.count() == 0
    assert not (settings.VAR_DIR / "uploads" / str(ticket.upload.pk)).exists()


def test_it_says_which_parts_never_arrived(client, alice, phase, prediction_zip):
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, parts=3)
    client.put(ticket.parts[0].url, data=split(data, 3)[0], content_type="application/zip")
    with pytest.raises(ApplicationError, match=r"part\(s\) \[2, 3\] never arrived"):
        upload_complete(upload=ticket.upload, user=alice, method_name="x")


def test_it_refuses_a_declared_size_that_differs(client, alice, phase, prediction_zip):
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, size=len(data) + 1, parts=1)
    send_local(ticket, data, client)
    with pytest.raises(ApplicationError, match=f"has {len(data)} bytes, but {len(data) + 1} were announced"):
        upload_complete(upload=ticket.upload, user=alice, method_name="x")


def test_it_refuses_up_front_what_completion_would_refuse(alice, eve, phase, settings, submit):
    with pytest.raises(NotAllowed, match="team"):
        upload_start(phase=phase, user=eve)
    settings.SUBMISSION_MAX_BYTES = 100
    with pytest.raises(ApplicationError, match="limit is 100 bytes"):
        upload_start(phase=phase, user=alice, size=101)
    settings.SUBMISSION_MAX_BYTES = 2 * 1024**3
    phase.max_total = 1
    phase.save()
    submit(alice)
    with pytest.raises(QuotaExceeded):
        upload_start(phase=phase, user=alice)


def test_it_uses_quota_only_at_completion_and_then_for_real(client, alice, bob, phase, prediction_zip):
    phase.max_total = 1
    phase.save()
    data = prediction_zip("good")
    first = upload_start(phase=phase, user=alice, parts=1)
    second = upload_start(phase=phase, user=bob, parts=1)  # both may start: nothing is used yet
    upload_complete(upload=first.upload, user=alice, method_name="first", parts=send_local(first, data, client))
    etags = send_local(second, prediction_zip("good"), client)  # another file (the same one would be a repeat)
    with pytest.raises(QuotaExceeded):
        upload_complete(upload=second.upload, user=bob, method_name="second", parts=etags)
    second.upload.refresh_from_db()
    assert second.upload.status == Upload.Status.ABORTED
    assert Submission.objects.count() == 1


def test_it_aborts_on_request_and_leaves_nothing(client, alice, bob, phase, prediction_zip, settings):
    ticket = upload_start(phase=phase, user=alice, parts=2)
    client.put(ticket.parts[0].url, data=b"PK\x03\x04 partial", content_type="application/zip")
    with pytest.raises(Exception, match="No such upload"):
        upload_abort(upload=ticket.upload, user=bob)
    upload_abort(upload=ticket.upload, user=alice)
    ticket.upload.refresh_from_db()
    assert ticket.upload.status == Upload.Status.ABORTED
    assert not (settings.VAR_DIR / "uploads" / str(ticket.upload.pk)).exists()
    with pytest.raises(Conflict):
        upload_complete(upload=ticket.upload, user=alice, method_name="x")
    response = client.put(ticket.parts[1].url, data=b"late", content_type="application/zip")
    assert response.status_code == 409


def test_it_cleans_up_abandoned_uploads(client, alice, phase, settings):
    ticket = upload_start(phase=phase, user=alice, parts=1)
    client.put(ticket.parts[0].url, data=b"PK\x03\x04", content_type="application/zip")
    fresh = upload_start(phase=phase, user=alice, parts=1)
    assert uploads_cleanup(now=timezone.now() + dt.timedelta(hours=25)) == 2
    assert uploads_cleanup(now=timezone.now()) == 0
    assert {u.status for u in Upload.objects.filter(pk__in=[ticket.upload.pk, fresh.upload.pk])} == {"aborted"}


# --- straight to S3 ---------------------------------------------------------------------------


def _keys(s3_server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_it_uploads_parts_straight_to_s3_with_presigned_urls(s3_server, bucket, phase_on_s3, alice, score):
    # A zip bigger than one S3 part, so the multipart path is real: pad it with a stored entry.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("README.txt", b"x" * (PART + 1024))
    data = buffer.getvalue()
    ticket = upload_start(phase=phase_on_s3, user=alice, filename="big.zip", size=len(data), parts=2)
    assert ticket.direct_to_s3 and all(t.url.startswith(s3_server.endpoint) for t in ticket.parts)
    chunks = [data[:PART], data[PART:]]
    for target, chunk in zip(ticket.parts, chunks):
        response = requests.put(target.url, data=chunk, timeout=30)  # no credentials: the URL carries them
        assert response.status_code == 200, response.text
        assert response.headers["ETag"]
    # No ETags sent: the server asks S3 which parts it has.
    submission = upload_complete(upload=ticket.upload, user=alice, method_name="Direct",
                                 sha256=hashlib.sha256(data).hexdigest())
    assert f"private/{ticket.upload.key}" in _keys(s3_server, bucket)
    assert submission.file.name == ticket.upload.key
    scored = score(submission)
    assert scored.status == Submission.Status.FAILED  # no predictions in it: a plain-words failure
    assert "found no predictions" in scored.failure_message


def test_it_leaves_nothing_in_s3_after_an_abort(s3_server, bucket, phase_on_s3, alice):
    ticket = upload_start(phase=phase_on_s3, user=alice, parts=2)
    requests.put(ticket.parts[0].url, data=b"x" * PART, timeout=30)
    upload_abort(upload=ticket.upload, user=alice)
    client = s3_server.client()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert [k for k in _keys(s3_server, bucket) if "/uploads/" in k] == []


def test_it_lets_only_one_of_two_completions_assemble_the_upload(client, alice, phase, prediction_zip):
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, parts=1)
    etags = send_local(ticket, data, client)
    Upload.objects.filter(pk=ticket.upload.pk).update(status=Upload.Status.COMPLETING)  # the other one is busy
    stale = Upload.objects.get(pk=ticket.upload.pk)
    stale.status = Upload.Status.PENDING  # what a second request read before the first claimed it
    with pytest.raises(Conflict, match="already being completed"):
        upload_complete(upload=stale, user=alice, method_name="second", parts=etags)
    assert Submission.objects.count() == 0
    assert (Upload.objects.get(pk=ticket.upload.pk).status) == Upload.Status.COMPLETING  # left to the first


def test_it_tolerates_the_one_extra_part_the_evalai_cli_announces(client, alice, phase, prediction_zip):
    # evalai announces int(size / part_size) + 1 parts: one too many for an exact multiple.
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, parts=3)  # no size announced, as evalai does
    for target, chunk in zip(ticket.parts[:2], split(data, 2)):
        client.put(target.url, data=chunk, content_type="application/zip")
    # Only when the evalai adapter says so: the core wants every announced part.
    with pytest.raises(ApplicationError, match=r"part\(s\) \[3\] never arrived"):
        upload_complete(upload=Upload.objects.get(pk=ticket.upload.pk), user=alice, method_name="strict")
    ticket = upload_start(phase=phase, user=alice, parts=3)
    for target, chunk in zip(ticket.parts[:2], split(data, 2)):
        client.put(target.url, data=chunk, content_type="application/zip")
    submission = upload_complete(upload=ticket.upload, user=alice, method_name="evalai-style",
                                 last_part_optional=True)
    assert submission.file.read() == data


def test_it_still_wants_every_part_when_the_size_was_announced(client, alice, phase, prediction_zip):
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, size=len(data), parts=3)
    for target, chunk in zip(ticket.parts[:2], split(data, 2)):
        client.put(target.url, data=chunk, content_type="application/zip")
    with pytest.raises(ApplicationError, match=r"part\(s\) \[3\] never arrived"):
        upload_complete(upload=ticket.upload, user=alice, method_name="x", last_part_optional=True)


def test_it_names_the_submission_when_a_completed_upload_is_touched_again(client, alice, phase, prediction_zip):
    ticket = upload_start(phase=phase, user=alice, parts=1)
    submission = upload_complete(upload=ticket.upload, user=alice, method_name="done",
                                 parts=send_local(ticket, prediction_zip("good"), client))
    with pytest.raises(Conflict) as info:
        upload_abort(upload=Upload.objects.get(pk=ticket.upload.pk), user=alice)
    assert info.value.detail == {"status": "completed", "submission_id": submission.pk}


def test_it_refuses_an_empty_zip_at_completion_like_a_one_post_upload(client, alice, phase):
    ticket = upload_start(phase=phase, user=alice, filename="empty.zip", parts=1)
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    etags = send_local(ticket, buffer.getvalue(), client)
    with pytest.raises(ApplicationError, match="The zip file 'empty.zip' is empty"):
        upload_complete(upload=ticket.upload, user=alice, method_name="x", parts=etags)
    assert Submission.objects.count() == 0
    assert Upload.objects.get(pk=ticket.upload.pk).status == Upload.Status.ABORTED
