"""submission_create: who may submit, when, how much, and that the task is sent only after commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import transaction

from leaderboard import celery_app
from leaderboard.accounts.models import Team
from leaderboard.errors import ApplicationError, NotAllowed, QuotaExceeded, TooLarge
from leaderboard.storage import private_storage
from leaderboard.submissions.models import Submission
from leaderboard.submissions.services import submission_cancel, submission_create

from .conftest import scoring_tasks_sent

NOW = dt.datetime(2030, 5, 17, 12, 0, tzinfo=dt.UTC)


def _phase_update(phase, **fields):
    for name, value in fields.items():
        setattr(phase, name, value)
    phase.save()
    return phase


def test_it_stores_the_upload_privately_with_its_hash_and_size(alice, submit, prediction_zip, phase):
    data = prediction_zip("good")
    submission = submit(alice, data=data, method_name="  Mask2Go  ", now=NOW)
    submission.refresh_from_db()

    assert submission.status == Submission.Status.SUBMITTED
    assert submission.attempt == 1
    assert submission.file_sha256 == hashlib.sha256(data).hexdigest()
    assert submission.file_size == len(data)
    assert submission.method_name == "Mask2Go"
    assert submission.team == Team.objects.get(name="Team A")
    assert submission.user == alice
    assert submission.submitted_at == NOW
    assert submission.is_baseline is False
    assert submission.file.name.startswith(f"submissions/{phase.pk}/")
    storage = private_storage()
    assert storage.exists(submission.file.name)
    with storage.open(submission.file.name, "rb") as handle:
        assert handle.read() == data
    # The private folder, never MEDIA_ROOT (which is what MEDIA_URL serves).
    on_disk = Path(storage.path(submission.file.name)).resolve()
    assert on_disk.is_relative_to(Path(settings.STORAGES["private"]["OPTIONS"]["location"]).resolve())
    assert not on_disk.is_relative_to(Path(settings.MEDIA_ROOT).resolve())


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_it_requires_a_method_name(alice, submit, name):
    with pytest.raises(ApplicationError, match="name"):
        submit(alice, method_name=name)
    assert Submission.objects.count() == 0


def test_it_refuses_a_user_without_a_team(eve, submit):
    with pytest.raises(NotAllowed, match="team") as caught:
        submit(eve)
    assert caught.value.status == 403
    assert Submission.objects.count() == 0


def test_it_refuses_before_the_phase_opens_and_says_when_it_opens(alice, submit, phase):
    _phase_update(phase, starts_at=NOW + dt.timedelta(days=1, hours=3, minutes=25))
    with pytest.raises(NotAllowed) as caught:
        submit(alice, now=NOW)
    assert "2030-05-18 15:25" in caught.value.message
    assert Submission.objects.count() == 0


def test_it_accepts_from_the_exact_start_time(alice, submit, phase):
    _phase_update(phase, starts_at=NOW)
    assert submit(alice, now=NOW).status == Submission.Status.SUBMITTED


def test_it_refuses_after_the_phase_ends_and_says_when_it_closed(alice, submit, phase):
    _phase_update(phase, ends_at=NOW - dt.timedelta(hours=2, minutes=30))
    with pytest.raises(NotAllowed) as caught:
        submit(alice, now=NOW)
    assert "2030-05-17 09:30" in caught.value.message
    assert Submission.objects.count() == 0


def test_it_refuses_at_the_exact_end_time(alice, submit, phase):
    _phase_update(phase, ends_at=NOW)
    with pytest.raises(NotAllowed, match="2030-05-17 12:00"):
        submit(alice, now=NOW)


def test_it_refuses_when_the_phase_does_not_accept_submissions(alice, submit, phase):
    _phase_update(phase, accepts_submissions=False, starts_at=NOW - dt.timedelta(days=1),
                  ends_at=NOW + dt.timedelta(days=1))
    with pytest.raises(NotAllowed, match="does not accept submissions"):
        submit(alice, now=NOW)
    assert Submission.objects.count() == 0


@pytest.mark.parametrize("content", [b"", b"plain text, not an archive", b"\x89PNG\r\n\x1a\n" + b"\0" * 32])
def test_it_refuses_a_file_that_is_not_a_zip(alice, phase, content):
    with pytest.raises(ApplicationError, match="not a zip") as caught:
        submission_create(phase=phase, user=alice, file=io.BytesIO(content), method_name="M")
    assert type(caught.value) is ApplicationError
    assert Submission.objects.count() == 0
    assert not private_storage().exists(f"submissions/{phase.pk}")


def test_it_refuses_a_file_over_the_size_limit(alice, submit, prediction_zip, settings):
    size = len(prediction_zip("good"))
    settings.SUBMISSION_MAX_BYTES = size - 1
    with pytest.raises(TooLarge) as caught:
        submit(alice, quality="good")
    assert caught.value.status == 413
    assert caught.value.detail == {"size": size, "limit": size - 1}
    assert f"{size} bytes" in caught.value.message
    assert Submission.objects.count() == 0


def test_it_accepts_a_file_exactly_at_the_size_limit(alice, submit, prediction_zip, settings):
    settings.SUBMISSION_MAX_BYTES = len(prediction_zip("good"))
    assert submit(alice, quality="good").file_size == settings.SUBMISSION_MAX_BYTES


def test_it_enforces_the_daily_quota_and_says_when_it_resets(alice, submit, phase):
    _phase_update(phase, max_per_day=2)
    submit(alice, now=NOW)
    submit(alice, now=NOW + dt.timedelta(hours=1))
    with pytest.raises(QuotaExceeded) as caught:
        submit(alice, now=NOW + dt.timedelta(hours=2))
    midnight = dt.datetime(2030, 5, 18, 0, 0, tzinfo=dt.UTC)
    assert caught.value.status == 429
    assert caught.value.detail == {"quota": "daily", "resets_at": midnight.isoformat()}
    assert "2030-05-18 00:00 UTC" in caught.value.message
    assert Submission.objects.count() == 2
    # The next UTC day starts a new count.
    assert submit(alice, now=midnight).status == Submission.Status.SUBMITTED


def test_it_counts_the_day_in_utc(alice, submit, phase):
    _phase_update(phase, max_per_day=1)
    submit(alice, now=dt.datetime(2030, 5, 17, 23, 59, 59, tzinfo=dt.UTC))
    # 01:30 at UTC+02:00 is 23:30 UTC on the same day as the first submission.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    with pytest.raises(QuotaExceeded):
        submit(alice, now=dt.datetime(2030, 5, 18, 1, 30, tzinfo=plus_two))
    assert submit(alice, now=dt.datetime(2030, 5, 18, 0, 0, tzinfo=dt.UTC)).status == Submission.Status.SUBMITTED


def test_it_enforces_the_total_quota(alice, submit, phase):
    _phase_update(phase, max_total=2)
    submit(alice, now=NOW - dt.timedelta(days=2))
    submit(alice, now=NOW - dt.timedelta(days=1))
    with pytest.raises(QuotaExceeded) as caught:
        submit(alice, now=NOW)
    assert caught.value.detail == {"quota": "total", "resets_at": None}
    assert "total" in caught.value.message
    assert "resets" not in caught.value.message
    assert Submission.objects.count() == 2


def test_it_names_the_total_quota_when_both_quotas_are_used_up(alice, submit, phase):
    # Waiting for tomorrow does not help here, so the message must not promise a reset.
    _phase_update(phase, max_per_day=1, max_total=1)
    submit(alice, now=NOW)
    with pytest.raises(QuotaExceeded) as caught:
        submit(alice, now=NOW + dt.timedelta(hours=1))
    assert caught.value.detail == {"quota": "total", "resets_at": None}
    assert "resets" not in caught.value.message


def test_it_does_not_count_failed_or_cancelled_submissions(alice, submit, phase):
    _phase_update(phase, max_per_day=1, max_total=1)
    failed = submit(alice, now=NOW)
    Submission.objects.filter(pk=failed.pk).update(status=Submission.Status.FAILED)
    cancelled = submit(alice, now=NOW + dt.timedelta(minutes=1))
    submission_cancel(submission=cancelled, user=alice)
    counted = submit(alice, now=NOW + dt.timedelta(minutes=2))
    assert counted.status == Submission.Status.SUBMITTED
    with pytest.raises(QuotaExceeded):
        submit(alice, now=NOW + dt.timedelta(minutes=3))


@pytest.mark.parametrize("status", [Submission.Status.VALIDATING, Submission.Status.SCORING,
                                    Submission.Status.FINISHED])
def test_it_counts_active_and_finished_submissions(alice, submit, phase, status):
    _phase_update(phase, max_total=1)
    first = submit(alice, now=NOW)
    Submission.objects.filter(pk=first.pk).update(status=status)
    with pytest.raises(QuotaExceeded):
        submit(alice, now=NOW + dt.timedelta(days=3))


def test_it_counts_a_teammates_submissions_for_the_team(alice, bob, carol, submit, phase):
    _phase_update(phase, max_per_day=1)
    submit(alice, now=NOW)
    with pytest.raises(QuotaExceeded):
        submit(bob, now=NOW + dt.timedelta(minutes=5))
    # Another team has its own quota.
    assert submit(carol, now=NOW + dt.timedelta(minutes=5)).team.name == "Team C"


def test_it_lets_organizers_add_baselines_without_team_or_quota(organizer, alice, submit, phase):
    _phase_update(phase, max_per_day=1, max_total=1)
    baselines = [submit(organizer, method_name=f"Baseline {i}", is_baseline=True, now=NOW) for i in range(3)]
    for baseline in baselines:
        assert baseline.is_baseline is True
        assert baseline.team is None
        assert baseline.user == organizer
    # Baselines use no team's quota either.
    assert submit(alice, now=NOW).status == Submission.Status.SUBMITTED


@pytest.mark.parametrize("persona", ["alice", "eve"])
def test_it_refuses_baselines_from_participants(request, submit, persona):
    user = request.getfixturevalue(persona)
    with pytest.raises(NotAllowed, match="organizers"):
        submit(user, is_baseline=True)
    assert Submission.objects.count() == 0


def test_it_enqueues_the_scoring_task_only_after_commit(alice, submit, django_capture_on_commit_callbacks):
    with scoring_tasks_sent() as delay:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            submission = submit(alice)
            delay.assert_not_called()
        assert len(callbacks) == 1
        delay.assert_called_once_with(submission.pk, 1)


def test_it_sends_nothing_when_the_transaction_rolls_back(alice, submit, django_capture_on_commit_callbacks):
    with scoring_tasks_sent() as delay:
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), \
                transaction.atomic():
            submit(alice)
            raise RuntimeError("the view failed after creating the submission")
        assert callbacks == []
        delay.assert_not_called()
    assert Submission.objects.count() == 0


def test_it_sends_nothing_when_the_quota_is_exceeded(alice, submit, phase, django_capture_on_commit_callbacks):
    _phase_update(phase, max_total=1)
    with scoring_tasks_sent() as delay:
        with django_capture_on_commit_callbacks(execute=True):
            first = submit(alice)
            with pytest.raises(QuotaExceeded):
                submit(alice)
        delay.assert_called_once_with(first.pk, 1)


def _empty_zip(comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize("comment", [b"", b"made by a script"])
def test_it_refuses_a_zip_with_no_entries_and_names_the_file(alice, phase, comment):
    upload = io.BytesIO(_empty_zip(comment))
    upload.name = "/home/me/preds.zip"
    with pytest.raises(ApplicationError) as caught:
        submission_create(phase=phase, user=alice, file=upload, method_name="M")
    assert caught.value.message.startswith("The zip file 'preds.zip' is empty: it has no files in it.")
    assert Submission.objects.count() == 0


def test_it_names_the_file_that_is_not_a_zip(alice, phase):
    upload = io.BytesIO(b"plain text")
    upload.name = "preds.tar"
    with pytest.raises(ApplicationError, match=r"^This is not a zip file\. 'preds.tar' must be a zip"):
        submission_create(phase=phase, user=alice, file=upload, method_name="M")


def test_it_keeps_the_submission_when_the_broker_is_down(alice, submit, django_capture_on_commit_callbacks, caplog):
    # The row is committed before the task is sent; the reconciler sends what could not be sent.
    with mock.patch.object(celery_app, "send_task", side_effect=ConnectionRefusedError("broker down")) as send, \
            django_capture_on_commit_callbacks(execute=True):
        submission = submit(alice)
    send.assert_called_once_with("leaderboard.submissions.tasks.score_submission", args=(submission.pk, 1),
                                 ignore_result=True)
    stored = Submission.objects.get(pk=submission.pk)
    assert (stored.status, stored.unsent) == (Submission.Status.SUBMITTED, True)
    assert "the reconciler will send it again" in caplog.text
