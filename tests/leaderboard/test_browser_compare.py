"""A visitor compares two rows of a board in a real browser, and looks at the board by trait: the charts are
drawn (their screenshots have the series' colours, not only the empty canvas and its axes)."""

from __future__ import annotations

import io
import os
import re

import numpy as np
from PIL import Image
from playwright.sync_api import expect

BOARD = "/challenges/egomask/phases/test/leaderboard/overall/"
# static/compare.js's palette: the by-trait chart's first row, the comparison chart's first difference.
FIRST_ROW = (0x25, 0x63, 0xEB)
FIRST_DIFFERENCE = (0xDC, 0x26, 0x26)


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16).reshape(-1, 3)


def _pixels_of(png: bytes, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    return int((np.abs(_rgb(png) - np.asarray(colour)) <= tolerance).all(axis=1).sum())


def _not_background(png: bytes) -> int:
    return int((_rgb(png) != 255).any(axis=1).sum())


def test_it_ticks_two_rows_compares_them_and_draws_the_charts(live_server, phase, alice, carol, submit, score,
                                                               page):
    good = score(submit(alice, "good", method_name="Good net"))
    noisy = score(submit(carol, "noisy", method_name="Noisy net"))
    phase.min_bucket_size = 1  # the tiny ground truth's buckets are small: show them all
    phase.save()

    page.goto(live_server.url + BOARD)
    page.get_by_label(f"compare submission #{good.pk}").check()
    page.get_by_label(f"compare submission #{noisy.pk}").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(rf"/compare/\?submissions={good.pk},{noisy.pk}$"))
    expect(page.locator(".split-comparison")).to_have_count(4)
    expect(page.locator(".split-comparison").first).to_contain_text("Paired differences")
    chart = page.locator("#compare-chart")
    expect(chart).to_have_attribute("data-drawn", "true")
    shot = chart.screenshot()
    assert _not_background(shot) > 1000
    assert _pixels_of(shot, FIRST_DIFFERENCE) > 200  # the bars of the difference
    # Another trait redraws the chart.
    page.select_option("#compare-trait", label="mask area")
    expect(chart).to_have_attribute("data-drawn", "true")
    assert _pixels_of(chart.screenshot(), FIRST_DIFFERENCE) > 200
    if os.environ.get("COMPARE_SCREENSHOT"):
        page.screenshot(path=os.environ["COMPARE_SCREENSHOT"], full_page=True)

    page.goto(live_server.url + BOARD)
    page.get_by_role("link", name="By trait").click()
    page.wait_for_url(re.compile(r"/leaderboard/overall/by-trait/"))
    by_trait = page.locator("#by-trait-chart")
    expect(by_trait).to_have_attribute("data-drawn", "true")
    shot = by_trait.screenshot()
    assert _not_background(shot) > 1000
    assert _pixels_of(shot, FIRST_ROW) > 100  # the first row's line and points
    expect(page.locator("table.by-trait tbody tr")).to_have_count(2)
    # The trait selector shows another trait (the form submits itself).
    page.select_option("#trait", "trajectories")
    page.wait_for_url(re.compile(r"trait=trajectories"))
    expect(page.locator("#by-trait-chart")).to_have_attribute("data-drawn", "true")


def test_compare_selected_asks_for_two_rows(live_server, phase, alice, submit, score, page):
    good = score(submit(alice, "good", method_name="Good net"))
    page.goto(live_server.url + BOARD)
    page.get_by_label(f"compare submission #{good.pk}").check()
    page.get_by_role("button", name="Compare selected").click()
    expect(page.get_by_role("status")).to_contain_text("Tick two to eight rows")
    assert page.url == live_server.url + BOARD
