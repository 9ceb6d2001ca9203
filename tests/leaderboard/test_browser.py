"""A researcher in a real browser: sign up, create a team, upload a zip, see the score.

Headless Debian Chromium driven by Playwright, against a live test server, with a real Celery
worker process on Redis scoring the upload.
"""

from __future__ import annotations

import re

from django.core import mail
from playwright.sync_api import expect

from leaderboard.submissions.models import Submission

from .processes import celery_worker, redis_broker

BROKER_URL = "redis://127.0.0.1:6379/12"  # used by the browser tests only


def test_it_signs_up_creates_a_team_uploads_and_sees_the_score(live_server, phase, synthetic, page, tmp_path):
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(synthetic["pred_zips"]["perfect"])

    with redis_broker(BROKER_URL), celery_worker(BROKER_URL, log=tmp_path / "worker.log"):
        page.goto(f"{live_server.url}/signup/")
        page.get_by_label("Username").fill("researcher")
        page.get_by_label("Email").fill("researcher@example.org")
        page.get_by_label(re.compile(r"^Password:?$")).fill("a-long-browser-password-7")
        page.get_by_label("Password (again)").fill("a-long-browser-password-7")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_text("researcher").first).to_be_visible()
        # A first submission needs a verified address: follow the link in the mail.
        (welcome,) = mail.outbox
        page.goto(re.search(r"http://\S+/account/confirm-email/\S+/", welcome.body).group(0))
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_text("You have confirmed researcher@example.org").first).to_be_visible()

        page.goto(f"{live_server.url}/challenges/{phase.challenge.slug}/")
        page.get_by_label("Create a team").fill("Browser Team")
        page.get_by_role("button", name="Create team").click()
        expect(page.get_by_text("Browser Team").first).to_be_visible()

        page.goto(f"{live_server.url}/challenges/{phase.challenge.slug}/phases/{phase.slug}/submit/")
        page.get_by_label("Predictions (.zip)").set_input_files(str(upload))
        page.get_by_label("Method name").fill("Perfect oracle")
        page.get_by_role("button", name="Upload and score").click()

        page.wait_for_url(re.compile(r"/submissions/\d+/$"), timeout=30_000)
        submission_id = int(re.search(r"/submissions/(\d+)/$", page.url).group(1))
        # The page refreshes itself when scoring ends; the worker scores the tiny set in about a second.
        expect(page.locator("[data-status-badge]").first).to_have_text("finished", timeout=60_000)
        expect(page.locator("main")).to_contain_text("100.00")

    submission = Submission.objects.get(pk=submission_id)
    assert submission.status == Submission.Status.FINISHED
    assert {s.split: s.IoU_gold_pred for s in submission.scores.all()}["overall"] == 100.0

    page.goto(f"{live_server.url}/challenges/{phase.challenge.slug}/phases/{phase.slug}/leaderboard/overall/")
    row = page.locator("tbody tr").filter(has_text="Browser Team")
    expect(row).to_contain_text("Perfect oracle")
    expect(row).to_contain_text("100.00")
