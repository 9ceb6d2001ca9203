"""Personas and builders for the server tests.

Personas (healthchecks style): alice owns Team A, bob is her teammate, carol owns Team C,
eve is signed up but in no team (an outsider who must see nothing private), and `organizer`
is staff. The phase has a real ground-truth bundle (the tiny synthetic benchmark) in private
storage; submissions are real zips made by `egomask synth-predict`.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import connections
from playwright.sync_api import sync_playwright
from storages.backends.s3 import S3Storage

from leaderboard import celery_app
from leaderboard.accounts.services import team_create, team_join
from leaderboard.challenges.models import Challenge, GroundTruthBundle
from leaderboard.challenges.services import ground_truth_check, ground_truth_create, phase_create
from leaderboard.storage import private_storage
from leaderboard.submissions import grading
from leaderboard.submissions import services as submission_services
from leaderboard.submissions.models import Submission
from leaderboard.submissions.queue import SCORE_SUBMISSION
from scoring.synth import synthesize, synthesize_predictions

from .s3 import S3Server, private_storage_setting, seaweedfs_s3

PASSWORD = "a-long-test-password-1"
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright downloads no browser
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def zip_tree(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The tiny benchmark as a folder and as a zip, plus prediction zips by quality."""
    base = tmp_path_factory.mktemp("bench")
    gt = synthesize(base / "gt", scale="tiny", seed=11)
    preds = {}
    for quality in ("perfect", "good", "noisy", "empty"):
        folder = synthesize_predictions(gt, base / f"pred-{quality}", quality=quality, seed=5)
        preds[quality] = zip_tree(folder)
    return {"gt_dir": gt, "gt_zip": zip_tree(gt), "pred_zips": preds}


def _with_comment(data: bytes, comment: bytes) -> bytes:
    """The zip `data` (which has no comment) with `comment`: the same entries, another sha256."""
    assert data[-2:] == b"\x00\x00", "the zip already has a comment"
    return data[:-2] + struct.pack("<H", len(comment)) + comment


@pytest.fixture
def prediction_zip(synthetic):
    """Factory: quality -> the bytes of a prediction zip, another file each call (the same predictions,
    a different zip comment): the server takes the same file from one team moments apart for a retried
    upload. `same=True`: exactly the bytes of every other `same` call."""
    made = itertools.count(1)

    def make(quality: str = "good", *, same: bool = False) -> bytes:
        data = synthetic["pred_zips"][quality]
        return data if same else _with_comment(data, f"upload {next(made)}".encode())

    return make


def make_user(username: str, *, verified: bool = True, **extra: object):
    """A user whose address is verified (as a participant's must be before a first submission) unless told."""
    user = get_user_model().objects.create_user(username=username, password=PASSWORD,
                                                email=f"{username}@example.org", **extra)
    EmailAddress.objects.create(user=user, email=user.email, verified=verified, primary=True)
    return user


@contextlib.contextmanager
def scoring_tasks_sent() -> Iterator[mock.Mock]:
    """Record the scoring tasks handed to Celery (by name, as queue.py sends them) instead of sending them.

    The mock is called as score_submission(submission_id, attempt) would be, once per message.
    """
    sent = mock.Mock(name="score_submission")

    def send_task(name: str, args: tuple = (), **options: object) -> None:
        assert name == SCORE_SUBMISSION, f"unexpected task {name}"
        sent(*args)

    with mock.patch.object(celery_app, "send_task", side_effect=send_task):
        yield sent


@pytest.fixture
def challenge(db) -> Challenge:
    return Challenge.objects.create(slug="egomask", title="EgoMask", description="Test challenge")


@pytest.fixture
def ground_truth(challenge, synthetic, settings, tmp_path):
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    bundle = ground_truth_create(challenge=challenge, name="tiny v1", file=io.BytesIO(synthetic["gt_zip"]),
                                 filename="gt.zip")
    return ground_truth_check(bundle_id=bundle.pk)


@pytest.fixture
def phase(challenge, ground_truth):
    return phase_create(challenge=challenge, slug="test", name="Test phase", ground_truth=ground_truth)


@pytest.fixture
def organizer(db):
    return make_user("organizer", is_staff=True, is_superuser=True)


@pytest.fixture
def alice(challenge):
    user = make_user("alice")
    team_create(challenge=challenge, user=user, name="Team A")
    return user


@pytest.fixture
def bob(alice, challenge):
    user = make_user("bob")
    team_join(user=user, invite_code=alice.memberships.get().team.invite_code)
    return user


@pytest.fixture
def carol(challenge):
    user = make_user("carol")
    team_create(challenge=challenge, user=user, name="Team C")
    return user


@pytest.fixture
def eve(db):
    return make_user("eve")


@pytest.fixture
def submit(phase, prediction_zip):
    """Factory: create a submission through the service (no task is sent: on_commit is not run)."""

    def make(user, quality: str = "good", method_name: str = "My method", data: bytes | None = None, **fields):
        return submission_services.submission_create(
            phase=fields.pop("phase", phase), user=user, file=io.BytesIO(prediction_zip(quality) if data is None
                                                                         else data),
            method_name=method_name, **fields)

    return make


@pytest.fixture
def score():
    """Run the scoring service for a submission's current attempt, as the worker would."""

    def run(submission):
        grading.submission_score(submission_id=submission.pk, attempt=submission.attempt)
        submission.refresh_from_db()
        return submission

    return run


@pytest.fixture(autouse=True)
def _clean_gt_cache():
    """The ground-truth loader caches per process; tests use fresh storage, so forget it."""
    from leaderboard.challenges import services

    services._load_cached.cache_clear()
    yield
    services._load_cached.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth's rate limits (login, sign-up, reset, invite codes) count in the default cache, per process:
    forget them, so that one test's logins do not use up another's."""
    from django.core.cache import cache

    cache.clear()


# --- a real browser ---------------------------------------------------------------------------------


@pytest.fixture
def page(monkeypatch):
    """A page in headless Chromium, driven by Playwright (for tests against `live_server`)."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connection (asgiref keys
        # connections by context); close it here or the test database cannot be dropped.
        connections.close_all()


# --- S3: a real SeaweedFS server (session), a fresh bucket per test, private storage switched to it ---


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def bucket(s3_server) -> Iterator[str]:
    name = f"egomask-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    s3_server.warm(name)
    yield name
    s3_server.remove(name)


@pytest.fixture
def s3_private(s3_server, bucket, settings, monkeypatch, tmp_path) -> S3Storage:
    """Private storage switched to the bucket, configured the way production settings configure it."""
    settings.STORAGES = {**settings.STORAGES, "private": private_storage_setting(s3_server, bucket, tmp_path)}
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    storage = private_storage()
    assert isinstance(storage, S3Storage)  # setting_changed dropped the cached backend
    # FileField resolves a callable storage once, when the model class is built: point the fields
    # at the new backend too.
    for model, field in ((Submission, "file"), (Submission, "details"), (GroundTruthBundle, "file")):
        monkeypatch.setattr(model._meta.get_field(field), "storage", storage)
    return storage


@pytest.fixture
def phase_on_s3(s3_private, challenge, synthetic):
    bundle = ground_truth_create(challenge=challenge, name="tiny on S3", file=io.BytesIO(synthetic["gt_zip"]),
                                 filename="gt.zip")
    bundle = ground_truth_check(bundle_id=bundle.pk)
    return phase_create(challenge=challenge, slug="s3", name="On S3", ground_truth=bundle)



__all__ = ["PASSWORD", "make_user", "scoring_tasks_sent", "zip_tree"]
