"""The outage script in its short form (CI): a private broker and a private PostgreSQL each stopped for a few
seconds under running workers; every upload meanwhile answered 201 or 503 (never a 500) and everything
accepted scored afterwards. It runs its PostgreSQL as the postgres user (`runuser`, as root). The long
form (a minute each, S3 too) is `python benchmarks/fault_outages.py`."""

from __future__ import annotations

import os
import subprocess
import sys

from .processes import ROOT


def test_the_outage_script_keeps_every_upload_and_scores_it_after_the_outage():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    result = subprocess.run(
        [sys.executable, "benchmarks/fault_outages.py", "--outage", "6", "--only", "broker,postgres", "--uploads",
         "2", "--pg-port", "55433", "--redis-port", "6392", "--database", "egomask_outages_ci"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    summary = [line for line in result.stdout.splitlines() if line.startswith(("broker", "postgres", "accepted"))]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary[0].startswith("broker   down 6 s · answers while down {201: ")
    assert summary[1].startswith("postgres down 6 s · answers while down {503: ")
    assert " · other states {} · splits scored twice 0" in summary[2]
