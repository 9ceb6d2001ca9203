"""A team opens its submission's page in a real browser: the diagnostics' charts are drawn (screenshots of the
canvases have more than their background in them; the PNGs are kept in the test's tmp dir), the trait selector
redraws the chart for another trait, and the frame timeline is drawn in a development phase, absent in a test
phase."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from leaderboard.challenges.services import phase_create
from leaderboard.submissions.boards import board_refresh

from .conftest import PASSWORD


def _ink(png: bytes) -> int:
    """Pixels unlike the image's most common colour (its background), ignoring faint antialiasing."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return int(np.count_nonzero(np.abs(pixels - background).sum(axis=1) > 60))


def _shot(page, selector: str, path) -> bytes:
    png = page.locator(selector).screenshot(path=str(path))
    assert _ink(png) > 500, f"{selector} looks blank ({path})"
    return png


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def test_the_submission_page_draws_its_diagnostics(live_server, challenge, ground_truth, phase, alice, organizer,
                                                   submit, score, page, tmp_path):
    dev = phase_create(challenge=challenge, slug="dev", name="Development phase", ground_truth=ground_truth,
                       show_expression_details=True, min_bucket_size=1)
    mine = score(submit(alice, "good", phase=dev, method_name="Our method"))
    score(submit(organizer, "noisy", phase=dev, method_name="Noisy baseline", is_baseline=True))
    board_refresh(phase_id=dev.pk)
    type(phase).objects.filter(pk=phase.pk).update(min_bucket_size=5)
    in_test_phase = score(submit(alice, "good", method_name="Our method"))
    assert mine.status == in_test_phase.status == "finished"

    _log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/submissions/{mine.pk}/")
    chart = page.locator("#diag-traits-chart")
    expect(chart).to_have_attribute("data-trait", "presence")
    label = chart.get_attribute("aria-label")
    assert label.startswith("IoU_gold_pred by presence, percent.") and "Noisy baseline (baseline)" in label
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200
    presence = _shot(page, "#diag-traits-chart", tmp_path / "traits-presence.png")
    _shot(page, "#diag-errors-chart", tmp_path / "errors.png")
    assert "missed" in page.locator("#diag-errors-chart").get_attribute("aria-label")

    page.get_by_label("Trait", exact=True).select_option("area")
    expect(chart).to_have_attribute("data-trait", "area")
    assert chart.get_attribute("aria-label").startswith("IoU_gold_pred by mask area, percent.")
    area = _shot(page, "#diag-traits-chart", tmp_path / "traits-area.png")
    assert area != presence
    page.get_by_label("Metric", exact=True).select_option("T_recall")
    page.wait_for_function("document.getElementById('diag-traits-chart').getAttribute('aria-label')"
                           ".startsWith('T_recall by mask area')")

    timeline = page.locator("#diag-timeline-chart")
    first = page.locator("#diag-expression option").first.get_attribute("value")
    expect(timeline).to_have_attribute("data-expression", first)
    expect(page.locator("#diag-timeline-text")).to_contain_text(f"{first}: ")
    expect(page.locator("#diag-timeline-text")).to_contain_text("Object visible in frames")
    one = _shot(page, "#diag-timeline-chart", tmp_path / "timeline-1.png")
    other = page.locator("#diag-expression option").nth(3).get_attribute("value")
    page.get_by_label("Expression", exact=True).select_option(other)
    expect(timeline).to_have_attribute("data-expression", other)
    assert _shot(page, "#diag-timeline-chart", tmp_path / "timeline-2.png") != one

    # The same team's submission in the test phase: the charts by trait, no timeline.
    page.goto(f"{live_server.url}/submissions/{in_test_phase.pk}/")
    expect(page.locator("#diag-traits-chart")).to_have_attribute("data-trait", "presence")
    _shot(page, "#diag-traits-chart", tmp_path / "test-phase-traits.png")
    expect(page.locator("[data-withheld]")).to_contain_text("Groups of fewer than 5 expressions are not shown")
    assert page.locator("#diag-timeline-chart").count() == 0
    assert page.locator("#diag-expression").count() == 0
