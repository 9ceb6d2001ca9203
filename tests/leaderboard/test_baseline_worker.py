"""A baseline run end to end through a real `celery worker` process and Redis: the shard tasks on the
queue the run uses, the chord (Redis counts its parts in the result backend), the assembly, the
scoring of the baseline submission, and its row on the board (JSON API).

The broker and the result backend are Redis databases of this module's own, flushed before and after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leaderboard import celery_app
from leaderboard.baselines.models import BaselineRun, ShardRun
from leaderboard.baselines.services import baseline_run_queue
from leaderboard.submissions.models import Submission

from . import processes
from .apiclient import client_for
from .baselinekit import *  # noqa: F403  (its fixtures)

BROKER_URL = "redis://127.0.0.1:6379/5"  # used by this module only
RESULTS_URL = "redis://127.0.0.1:6379/4"
TIMEOUT = 90.0

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def results_backend(monkeypatch) -> Iterator[None]:
    """This process and the worker keep the chord's state in RESULTS_URL."""
    client = redis.Redis.from_url(RESULTS_URL)
    client.flushdb()
    previous = celery_app.conf.result_backend
    monkeypatch.setenv("CELERY_RESULT_BACKEND", RESULTS_URL)  # the worker reads it through the settings
    celery_app.conf.result_backend = RESULTS_URL
    celery_app._local.__dict__.pop("backend", None)  # the app keeps its backend per thread once made
    try:
        yield
    finally:
        celery_app.conf.result_backend = previous
        celery_app._local.__dict__.pop("backend", None)
        client.flushdb()
        client.close()


@pytest.fixture
def worker(framed_phase, baseline_settings, results_backend, monkeypatch, tmp_path) -> Iterator[Path]:
    """`celery worker` on both queues a run uses, seeing the test's database, frames and work folder."""
    for name in ("BASELINE_FRAMES_DIR", "BASELINE_WORK_DIR"):
        monkeypatch.setenv(name, str(getattr(baseline_settings, name)))
    log = tmp_path / "worker.log"
    with processes.redis_broker(BROKER_URL), processes.celery_worker(BROKER_URL, log, queues="gpu,scoring") as child:
        yield log
        assert child.poll() is None, log.read_text(errors="replace")[-4000:]


def _wait_for(log: Path, what: str, done) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}"
        time.sleep(0.3)


def test_it_runs_a_cpu_baseline_through_the_worker_and_the_board_shows_it(framed_phase, organizer, worker):
    run = baseline_run_queue(phase=framed_phase, user=organizer, runner="colour", shards=2)  # sent on commit

    def scored() -> bool:
        run.refresh_from_db()
        return run.status in (BaselineRun.Status.FINISHED, BaselineRun.Status.FAILED)

    _wait_for(worker, f"run {run.pk} to be scored", scored)
    assert (run.status, run.error) == (BaselineRun.Status.FINISHED, "")
    shards = list(run.shard_runs.order_by("index"))
    assert [s.status for s in shards] == [ShardRun.Status.FINISHED] * 2
    assert all(s.hostname.startswith("celery@") and s.expressions_done == s.expressions_total > 0 for s in shards)
    submission = run.submission
    assert (submission.status, submission.is_baseline, submission.user) == (Submission.Status.FINISHED, True,
                                                                            organizer)
    rows = client_for().get(f"/api/v1/phases/{framed_phase.pk}/leaderboard/").json()["rows"]
    assert [(r["method"], r["rank"], r["baseline"]) for r in rows] == [
        ("colour (reference runner)", None, {"kind": "runner", "runner": "colour", "version": "1.0.0",
                                             "run": run.pk})]
    log = worker.read_text(errors="replace")
    assert "leaderboard.baselines.tasks.run_cpu_shard" in log and "leaderboard.baselines.tasks.assemble_run" in log
