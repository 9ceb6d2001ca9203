"""The submit form's two-step upload in a real browser: a file larger than the (here lowered) part size goes
through POST /api/v1/phases/<id>/uploads/, one PUT per part and POST complete with a sha256 computed in
the page; a refused part is retried, and an upload cut off by a dropped connection resumes.

Headless Debian Chromium driven by Playwright, against a live test server.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter

import pytest
from playwright.sync_api import Route, expect

from leaderboard.submissions.models import Submission, Upload

from .conftest import PASSWORD
from .processes import redis_broker

BROKER_URL = "redis://127.0.0.1:6379/12"  # the browser tests' (the scoring task is sent there, then flushed)
PART = 1000  # bytes; the tiny prediction zip (about 2.5 kB) is sent in three parts
PART_URL = re.compile(r"/api/v1/uploads/[0-9a-f-]+/parts/(\d+)/")


@pytest.fixture
def broker():
    with redis_broker(BROKER_URL) as client:
        yield client


def fill_in(page, live_server, phase, upload) -> None:
    """Log in as alice and fill the phase's submit form with `upload`."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/challenges/{phase.challenge.slug}/phases/{phase.slug}/submit/")
    page.get_by_label("Predictions (.zip)").set_input_files(str(upload))
    page.get_by_label("Method name").fill("In parts")


@pytest.fixture
def form(live_server, page, phase, alice, settings, synthetic, tmp_path, broker):
    """Alice on the filled-in submit page, the part size lowered; the file to upload."""
    settings.UPLOAD_PART_BYTES = PART
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(synthetic["pred_zips"]["perfect"])
    assert upload.stat().st_size > 2 * PART
    fill_in(page, live_server, phase, upload)
    return upload


def count_puts(page) -> Counter:
    """Part number -> how many times the page sent it (every attempt, refused or not)."""
    sent: Counter = Counter()

    def seen(request) -> None:
        found = PART_URL.search(request.url)
        if found and request.method == "PUT":
            sent[int(found.group(1))] += 1

    page.on("request", seen)
    return sent


def submitted(page, upload) -> Submission:
    page.wait_for_url(re.compile(r"/submissions/\d+/$"), timeout=30_000)
    submission = Submission.objects.get()  # exactly one
    assert page.url.endswith(f"/submissions/{submission.pk}/")
    data = upload.read_bytes()
    assert (submission.file_size, submission.file_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert submission.file.read() == data
    assert submission.method_name == "In parts" and submission.status == Submission.Status.SUBMITTED
    assert Upload.objects.get().status == Upload.Status.COMPLETED  # it came through the two-step path
    return submission


def test_it_sends_a_large_file_in_parts_with_the_sha256_it_computed(page, form):
    sent = count_puts(page)
    page.get_by_role("button", name="Upload and score").click()
    submitted(page, form)
    assert sent == {1: 1, 2: 1, 3: 1}


def test_it_retries_a_part_the_server_refused_once(page, form):
    sent = count_puts(page)
    refused = []

    def refuse_first(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, body="busy")
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/uploads/[0-9a-f-]+/parts/2/"), refuse_first)
    page.get_by_role("button", name="Upload and score").click()
    submitted(page, form)
    assert len(refused) == 1
    assert sent == {1: 1, 2: 2, 3: 1}


def test_it_resumes_after_a_dropped_connection_sending_only_the_missing_parts(page, form):
    sent = count_puts(page)
    cut_off = re.compile(r"/api/v1/uploads/[0-9a-f-]+/parts/3/")
    page.route(cut_off, lambda route: route.abort("connectionreset"))
    page.get_by_role("button", name="Upload and score").click()
    error = page.locator("[data-upload-error]")
    expect(error).to_contain_text("Press “Upload and score” again with the same file to resume", timeout=30_000)
    assert not Submission.objects.exists()
    assert sent == {1: 1, 2: 1, 3: 5}  # part 3: the first try and four retries

    page.unroute(cut_off)
    page.get_by_role("button", name="Upload and score").click()
    submitted(page, form)
    assert sent == {1: 1, 2: 1, 3: 6}  # parts 1 and 2 were not sent again
    assert Upload.objects.count() == 1  # the same upload, resumed


def test_its_sha256_is_hashlibs(page, live_server, phase):
    page.goto(f"{live_server.url}/")
    page.add_script_tag(url=f"{live_server.url}/static/sha256.js")
    for size in (0, 55, 56, 64, 65, 1000, 300_000):
        data = os.urandom(size)
        got = page.evaluate("""([bytes, chunk]) => {
            const h = new window.EgoMaskSha256(), all = new Uint8Array(bytes);
            for (let i = 0; i < all.length; i += chunk) h.update(all.subarray(i, i + chunk));
            return h.hex();
        }""", [list(data), 777])
        assert got == hashlib.sha256(data).hexdigest(), size


def test_it_sends_the_parts_straight_to_s3(page, live_server, phase_on_s3, alice, settings, synthetic, tmp_path,
                                           broker, s3_server):
    settings.UPLOAD_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part but the last
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(synthetic["pred_zips"]["perfect"] + b"\0" * (5 * 1024 * 1024))  # a zip with padding after it
    to_s3: Counter = Counter()
    page.on("request", lambda r: to_s3.update([r.method]) if r.url.startswith(s3_server.endpoint) else None)
    fill_in(page, live_server, phase_on_s3, upload)
    page.get_by_role("button", name="Upload and score").click()
    submitted(page, upload)
    assert to_s3["PUT"] == 2  # both parts went to the bucket (presigned URLs), none through this server
