"""The broker is down when a team uploads (issue 9, defect 1): the upload was saved, so the answer is the
submission (201), never a 500; the failed send is logged and marked on the row; a retried upload finds
the same submission; the reconciler sends the task once the broker is back.

Real parts: a Celery app sending to a closed port (nothing listens: connection refused, as when Redis is
stopped), then to a real Redis database; committed rows (the enqueue runs on commit).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leaderboard.submissions.grading import submissions_reconcile
from leaderboard.submissions.models import Submission
from leaderboard.submissions.queue import SCORE_SUBMISSION

from . import processes
from .apiclient import client_for

pytestmark = pytest.mark.django_db(transaction=True)
BROKER_URL = "redis://127.0.0.1:6379/2"  # this file's own database


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def _post(user, phase, data: bytes, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client_for(user).post(f"/api/v1/phases/{phase.pk}/submissions/",
                                 {"file": SimpleUploadedFile("preds.zip", data), "method_name": "M"},
                                 format="multipart", **headers)


def _queued(client) -> list[dict]:
    """The scoring messages waiting in the broker's `scoring` list, as (task, args)."""
    found = []
    for raw in client.lrange("scoring", 0, -1):
        message = json.loads(raw)
        found.append((message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0]))
    return found


def test_an_upload_during_a_broker_outage_is_accepted_then_sent_when_the_broker_is_back(
        alice, phase, prediction_zip, caplog):
    data = prediction_zip("good")
    with processes.sending_to(f"redis://127.0.0.1:{_closed_port()}/0"), caplog.at_level(logging.ERROR):
        started = time.monotonic()
        first = _post(alice, phase, data, key="4b1f0f5e-upload-1")
        took = time.monotonic() - started
        # The CLI's retry of the same upload (its answer was lost): the same submission, not a second one.
        again = _post(alice, phase, data, key="4b1f0f5e-upload-1")

    assert first.status_code == 201, first.content
    submission = Submission.objects.get()
    assert first.json()["id"] == submission.pk and first.json()["status"] == "submitted"
    # The request did not hang on the broker (before: ~19 s waiting on Celery's result store).
    assert took < 10, f"the upload waited {took:.1f} s on a broker that is down"
    assert (submission.status, submission.unsent) == (Submission.Status.SUBMITTED, True)
    assert f"could not send {SCORE_SUBMISSION}({submission.pk}, 1)" in caplog.text
    assert (again.status_code, again.json()["id"], again["Idempotent-Replayed"]) == (200, submission.pk, "true")
    assert Submission.objects.count() == 1

    with processes.redis_broker(BROKER_URL) as broker:
        assert submissions_reconcile() == {"requeued": 1, "restarted": 0}  # at once: no two-minute wait
        assert _queued(broker) == [(SCORE_SUBMISSION, [submission.pk, 1])]
    submission.refresh_from_db()
    assert submission.unsent is False


def test_an_upload_is_refused_with_a_sentence_only_for_its_own_faults_while_the_broker_is_down(
        alice, phase, prediction_zip):
    # Nothing is saved for a refused upload, so nothing is sent either: the answer is about the file.
    with processes.sending_to(f"redis://127.0.0.1:{_closed_port()}/0"):
        response = _post(alice, phase, b"not a zip")
    assert response.status_code == 400
    assert response.json()["error"].startswith("This is not a zip file.")
    assert Submission.objects.count() == 0
