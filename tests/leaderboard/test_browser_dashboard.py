"""An organizer opens the dashboard in a real browser: the chart is drawn (bars with a size), and an export
link downloads the file with the session (no token needed in the browser)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from leaderboard.challenges.models import Host
from leaderboard.submissions.models import FailureKind, Submission

from .conftest import PASSWORD, make_user


def test_it_draws_the_chart_and_downloads_an_export(live_server, phase, alice, page, tmp_path):
    host = make_user("hector")
    Host.objects.create(challenge=phase.challenge, user=host, role=Host.Role.ORGANIZER)
    team = alice.memberships.get().team
    for i, status in enumerate([Submission.Status.FINISHED, Submission.Status.FAILED, Submission.Status.FINISHED]):
        Submission.objects.create(phase=phase, team=team, user=alice, file="submissions/x.zip", file_sha256=f"{i:064x}",
                                  method_name=f"Method {i}", status=status,
                                  failure_kind=FailureKind.INVALID if status == "failed" else "",
                                  failure_message="Frame 3 is missing." if status == "failed" else "",
                                  submitted_at=timezone.now() - dt.timedelta(days=i))

    page.goto(f"{live_server.url}/login/?next=/challenges/egomask/organize/")
    page.get_by_label("Username").fill("hector")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/challenges/egomask/organize/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    chart = page.locator("#overall svg.chart")
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 80
    assert page.locator("#overall svg.chart g.day").count() == 30
    bar = page.locator("#overall svg.chart g.day rect.finished").first.bounding_box()
    assert bar and bar["height"] > 1
    expect(page.locator("#overall table.failures")).to_contain_text("Frame N is missing.")
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)

    with page.expect_download() as info:
        page.locator(f"#phase-{phase.slug} a", has_text="submissions.csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert sorted(row["method_name"] for row in rows) == ["Method 0", "Method 1", "Method 2"]
