"""Fault injection: a real Celery worker whose scorer takes FAULT_SCORING_DELAY ("low,high" seconds, drawn
per submission) longer, so that a test can kill it in the middle of scoring. Nothing else is changed:
the same app, settings, tasks, lease and database. Run as `python tests/leaderboard/fault_worker.py
-Q scoring -c 1 ...` (the arguments of `celery worker`)."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project, when run as a script

import django  # noqa: E402

django.setup()

from leaderboard.celery import app  # noqa: E402
from leaderboard.submissions import grading  # noqa: E402

low, high = (float(x) for x in os.environ.get("FAULT_SCORING_DELAY", "0,0").split(","))
_evaluate = grading.evaluate


def _slower(gt, path, **options):  # type: ignore[no-untyped-def]
    time.sleep(random.uniform(low, high))
    return _evaluate(gt, path, **options)


grading.evaluate = _slower

if __name__ == "__main__":
    app.worker_main(["worker", *sys.argv[1:]])
