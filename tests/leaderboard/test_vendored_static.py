"""The vendored charting library is the release its README names, unchanged, and is served by the site."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor" / "chart.js"


def test_the_vendored_chart_js_is_the_file_its_readme_names():
    recorded = re.search(r"sha256: `([0-9a-f]{64})`", (VENDOR / "README.md").read_text()).group(1)
    body = (VENDOR / "chart.umd.min.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == recorded
    assert body.startswith(b"/*!\n * Chart.js v4.5.1")
    assert "MIT" in (VENDOR / "LICENSE.md").read_text()


def test_the_site_finds_it_among_its_own_static_files():
    from django.contrib.staticfiles import finders

    assert finders.find("vendor/chart.js/chart.umd.min.js")
