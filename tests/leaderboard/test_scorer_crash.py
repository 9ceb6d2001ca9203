"""Whose fault a failure is (issue 9, defect 3): a file that stops the scorer in a way it does not foresee fails
once (no retries burning worker time), counts as the team's submission, and keeps its traceback for the
organizers only; errors outside the scorer (storage, the database) are ours and retried."""

from __future__ import annotations

import io
import zipfile
from unittest import mock

from leaderboard.submissions import grading
from leaderboard.submissions.models import Submission
from leaderboard.submissions.selectors import quota_for
from leaderboard.submissions.tasks import score_submission

from .apiclient import client_for

Status = Submission.Status


def test_a_file_that_crashes_the_scorer_fails_once_and_counts(alice, submit, phase):
    phase.max_total = 3
    phase.save()
    submission = submit(alice)
    crash = mock.Mock(side_effect=RecursionError("maximum recursion depth exceeded while decoding a JSON array"))
    with mock.patch.object(grading, "evaluate", crash):
        score_submission.apply(args=(submission.pk, 1))  # .apply runs the task's retries, if it asked for any
    assert crash.call_count == 1
    submission.refresh_from_db()
    assert (submission.status, submission.attempt, submission.failure_kind) == (Status.FAILED, 1, "crashed")
    assert submission.failure_message == (
        "The scorer stopped on something in your file that it could not handle (RecursionError). The organizers "
        "have the details. Check the file with `egomask validate`; this counts as one of your team's submissions.")
    assert "Traceback (most recent call last)" in submission.crash_report
    assert "RecursionError: maximum recursion depth exceeded" in submission.crash_report
    assert quota_for(phase=phase, team_id=submission.team_id).total_left == 2


def test_the_traceback_is_for_organizers_only(alice, organizer, submit, client):
    submission = submit(alice)
    with mock.patch.object(grading, "evaluate", side_effect=OverflowError("Python int too large")):
        score_submission(submission.pk, 1)
    body = client_for(alice).get(f"/api/v1/submissions/{submission.pk}/").json()
    assert body["failure_kind"] == "crashed" and "crash_report" not in body
    client.force_login(alice)
    assert "Traceback" not in client.get(f"/submissions/{submission.pk}/").content.decode()
    client.force_login(organizer)
    admin_page = client.get(f"/admin/submissions/submission/{submission.pk}/change/").content.decode()
    assert "OverflowError: Python int too large" in admin_page


def test_an_error_outside_the_scorer_is_ours_and_retried(alice, submit, phase):
    submission = submit(alice, quality="perfect")
    real = grading._fetch
    calls = []

    def storage_blinks(sub, local):
        calls.append(sub.attempt)
        if len(calls) == 1:
            raise ConnectionResetError("storage closed the connection")
        return real(sub, local)

    with mock.patch.object(grading, "_fetch", side_effect=storage_blinks):
        score_submission.apply(args=(submission.pk, 1))
    submission.refresh_from_db()
    assert (submission.status, submission.attempt, submission.failure_kind) == (Status.FINISHED, 2, "")
    assert quota_for(phase=phase, team_id=submission.team_id).total_left is None


def test_an_invalid_file_is_the_files_problem_and_not_counted(alice, submit, phase, score, prediction_zip):
    phase.max_total = 3
    phase.save()
    name, data = _nested_too_deep(prediction_zip("good"))  # JSON nested 100 000 deep (was a RecursionError)
    scored = score(submit(alice, data=data))
    assert (scored.status, scored.failure_kind, scored.crash_report) == (Status.FAILED, "invalid", "")
    assert name in scored.failure_message
    assert quota_for(phase=phase, team_id=scored.team_id).total_left == 3


def _nested_too_deep(good: bytes) -> tuple[str, bytes]:
    """The zip `good` with its first mask file replaced by a JSON array nested 100 000 deep."""
    with zipfile.ZipFile(io.BytesIO(good)) as source:
        names = source.namelist()
        target = next(n for n in names if n.endswith(".json"))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in names:
                archive.writestr(entry, b"[" * 100_000 + b"]" * 100_000 if entry == target else source.read(entry))
    return target, buffer.getvalue()
