"""Private storage on a real S3 server (SeaweedFS): ground truth, uploads and per-expression results go
to the bucket under the private prefix, scoring reads them back, and nobody reads them unsigned."""

from __future__ import annotations

import hashlib
import io

import pytest

from leaderboard.challenges.models import GroundTruthBundle
from leaderboard.challenges.services import ground_truth_check, ground_truth_create, phase_create
from leaderboard.submissions.grading import submission_score
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.selectors import per_video_results
from leaderboard.submissions.services import submission_create
from scoring import METRICS

from .s3 import S3Server, anonymous_get

PREFIX = "private"


def _keys(server: S3Server, bucket: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_it_scores_end_to_end_with_every_file_in_s3(s3_private, s3_server, bucket, challenge, alice, synthetic,
                                                    prediction_zip):
    bundle = ground_truth_create(challenge=challenge, name="tiny on S3", file=io.BytesIO(synthetic["gt_zip"]),
                                 filename="gt.zip")
    bundle = ground_truth_check(bundle_id=bundle.pk)
    assert bundle.status == GroundTruthBundle.Status.READY, bundle.message
    phase = phase_create(challenge=challenge, slug="s3", name="On S3", ground_truth=bundle)
    data = prediction_zip("perfect")

    submission = submission_create(phase=phase, user=alice, file=io.BytesIO(data), method_name="S3")
    submission_score(submission_id=submission.pk, attempt=submission.attempt)
    submission.refresh_from_db()

    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    assert {s.split: s.metrics() for s in Score.objects.filter(submission=submission)} == {
        split: {m: 100.0 for m in METRICS} for split in ("short", "medium", "long", "overall")}
    assert per_video_results(submission=submission) != []

    client = s3_server.client()
    upload_key = f"{PREFIX}/{submission.file.name}"
    assert _keys(s3_server, bucket) == sorted([f"{PREFIX}/{bundle.file.name}", upload_key,
                                               f"{PREFIX}/{submission.details.name}"])
    stored = client.get_object(Bucket=bucket, Key=upload_key)["Body"].read()
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (submission.file_size, submission.file_sha256)
    assert stored == data
    gt_stored = client.get_object(Bucket=bucket, Key=f"{PREFIX}/{bundle.file.name}")["Body"].read()
    assert hashlib.sha256(gt_stored).hexdigest() == bundle.sha256


def test_it_refuses_unsigned_reads_of_private_files(s3_private, s3_server, bucket, challenge, alice, phase_on_s3,
                                                    prediction_zip):
    data = prediction_zip("good")
    submission = submission_create(phase=phase_on_s3, user=alice, file=io.BytesIO(data), method_name="Private")
    key = f"{PREFIX}/{submission.file.name}"
    assert key in _keys(s3_server, bucket)

    for name in (submission.file.name, phase_on_s3.ground_truth.file.name):
        status, body = anonymous_get(f"{s3_server.endpoint}/{bucket}/{PREFIX}/{name}")
        assert status == 403, body[:200]
        assert b"AccessDenied" in body
    status, _ = anonymous_get(f"{s3_server.endpoint}/{bucket}?list-type=2")
    assert status == 403

    # A URL from the storage is signed and short-lived: that one works.
    signed = s3_private.url(submission.file.name)
    assert "Signature=" in signed or "X-Amz-Signature=" in signed
    status, body = anonymous_get(signed)
    assert (status, body) == (200, data)


def test_it_refuses_unknown_credentials(s3_server, bucket):
    client = s3_server.client(access_key="someone-else", secret_key="guessed")
    with pytest.raises(Exception, match="InvalidAccessKeyId|AccessDenied|SignatureDoesNotMatch"):
        client.list_objects_v2(Bucket=bucket)
