"""A retried upload is not a second submission (issue 9, defect 1): the Idempotency-Key header, the same
file from the same team moments apart, a large upload completed twice; and what is not a retry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leaderboard.submissions.models import Submission, Upload
from leaderboard.submissions.selectors import quota_for
from leaderboard.submissions.uploads import upload_complete, upload_start

from .apiclient import assert_error, client_for
from .test_uploads import send_local

Status = Submission.Status


def _post(user, phase, data: bytes, key: str | None = None, method_name: str = "M"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client_for(user).post(f"/api/v1/phases/{phase.pk}/submissions/",
                                 {"file": SimpleUploadedFile("preds.zip", data), "method_name": method_name},
                                 format="multipart", **headers)


def test_a_request_repeated_with_its_key_answers_the_first_submission_and_uses_no_quota(alice, bob, phase,
                                                                                       prediction_zip):
    phase.max_total = 2
    phase.save()
    data = prediction_zip("good")
    first = _post(alice, phase, data, key="k-1")
    again = _post(alice, phase, data, key="k-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (200, "true", first.json())
    assert Submission.objects.count() == 1
    assert quota_for(phase=phase, team_id=Submission.objects.get().team_id).total_left == 1
    # The key is the user's: a teammate's request with the same key and another file is another submission.
    assert _post(bob, phase, prediction_zip("good"), key="k-1").status_code == 201


def test_a_key_used_for_another_file_is_refused_with_a_sentence(alice, phase, prediction_zip):
    first = _post(alice, phase, prediction_zip("good"), key="reused")
    body = assert_error(_post(alice, phase, prediction_zip("noisy"), key="reused"), 409)
    assert body["error"] == (f"The Idempotency-Key 'reused' was already used for another file (submission "
                             f"#{first.json()['id']}); send a new key with a new upload.")
    assert Submission.objects.count() == 1


@pytest.mark.parametrize("key", ["x" * 201, "tab\there", "clé"])
def test_a_key_that_is_not_a_short_printable_ascii_string_is_refused(alice, phase, prediction_zip, key):
    body = assert_error(_post(alice, phase, prediction_zip("good"), key=key), 400)
    assert body["error"].startswith("The Idempotency-Key header must be at most 200 printable ASCII characters")
    assert Submission.objects.count() == 0


def test_the_same_file_from_the_same_team_moments_later_is_the_same_submission(alice, bob, phase, submit,
                                                                              prediction_zip, settings):
    # No key (the web form, the evalai CLI, curl): the same bytes, the same team, the same phase, within
    # SUBMISSION_REPEAT_SECONDS.
    data = prediction_zip("good")
    now = dt.datetime(2030, 5, 17, 12, 0, tzinfo=dt.UTC)
    first = submit(alice, data=data, now=now)
    by_teammate = submit(bob, data=data, now=now + dt.timedelta(seconds=settings.SUBMISSION_REPEAT_SECONDS - 1))
    assert (by_teammate.pk, by_teammate.replayed, first.replayed) == (first.pk, True, False)
    later = submit(alice, data=data, now=now + dt.timedelta(seconds=settings.SUBMISSION_REPEAT_SECONDS + 1))
    assert later.pk != first.pk and not later.replayed


def test_a_repeat_of_a_file_that_failed_as_invalid_is_that_failure_not_after_our_error_or_a_cancel(
        alice, phase, submit, prediction_zip):
    data = prediction_zip("good")
    failed = submit(alice, data=data)
    Submission.objects.filter(pk=failed.pk).update(status=Status.FAILED, failure_kind="invalid")
    assert submit(alice, data=data).pk == failed.pk  # the same file fails the same way: say so at once
    Submission.objects.filter(pk=failed.pk).update(failure_kind="internal")
    retried = submit(alice, data=data)
    assert retried.pk != failed.pk  # our fault: the team may well be trying again
    Submission.objects.filter(pk=retried.pk).update(status=Status.CANCELLED)
    assert submit(alice, data=data).pk not in (failed.pk, retried.pk)  # cancelled: they changed their mind


def test_another_team_with_the_same_file_or_an_organizers_baseline_is_not_a_repeat(alice, carol, organizer,
                                                                                  phase, submit, prediction_zip):
    data = prediction_zip("good")
    ours = submit(alice, data=data)
    theirs = submit(carol, data=data)
    baseline = submit(organizer, data=data, is_baseline=True)
    again = submit(organizer, data=data, is_baseline=True)
    assert len({ours.pk, theirs.pk, baseline.pk, again.pk}) == 4


def test_the_web_form_says_the_file_was_already_submitted(client, alice, phase, prediction_zip):
    client.force_login(alice)
    data = prediction_zip("good")
    url = f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/submit/"
    form = {"method_name": "M", "is_public": "on"}
    client.post(url, {**form, "file": SimpleUploadedFile("p.zip", data)})
    page = client.post(url, {**form, "file": SimpleUploadedFile("p.zip", data)}, follow=True)
    submission = Submission.objects.get()
    assert page.redirect_chain[-1][0] == f"/submissions/{submission.pk}/"
    assert (f"You sent this file moments ago: it is submission #{submission.pk}, shown here. It was not submitted "
            "a second time.") in page.content.decode()


def test_a_large_upload_completed_twice_answers_its_one_submission(client, alice, phase, prediction_zip):
    data = prediction_zip("good")
    ticket = upload_start(phase=phase, user=alice, parts=1)
    etags = send_local(ticket, data, client)
    first = upload_complete(upload=ticket.upload, user=alice, method_name="M", parts=etags)
    ticket.upload.refresh_from_db()
    second = upload_complete(upload=ticket.upload, user=alice, method_name="M", parts=etags)
    assert (second.pk, second.replayed, first.replayed) == (first.pk, True, False)
    # The same file again as a new large upload: its copy is discarded, the first submission answers.
    other = upload_start(phase=phase, user=alice, parts=1)
    repeat = upload_complete(upload=other.upload, user=alice, method_name="M", parts=send_local(other, data, client))
    other.upload.refresh_from_db()
    assert (repeat.pk, repeat.replayed, other.upload.status) == (first.pk, True, Upload.Status.ABORTED)
    assert not other.upload.submission and Submission.objects.count() == 1
