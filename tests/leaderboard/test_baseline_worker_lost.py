"""A shard whose worker is killed in the middle is redelivered and resumes: a real prefork worker,
Redis, and SIGKILL of the pool process that runs the shard. The frames are read slowly in the
worker (a sitecustomize of the test's own, set through PYTHONPATH), so the kill lands mid-shard."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from leaderboard.baselines.models import BaselineRun, ShardRun
from leaderboard.baselines.services import baseline_run_queue
from leaderboard.submissions.models import Submission
from scoring.runners import get_runner, load_jobs, run

from . import processes
from .baselinekit import *  # noqa: F403  (its fixtures)
from .test_baseline_worker import RESULTS_URL, results_backend  # noqa: F401  (a fixture)

BROKER_URL = "redis://127.0.0.1:6379/3"  # used by this module only
TIMEOUT = 120.0
SLOW_READS = '''
import os, time
import scoring.runners.base as base

_read = base.Frames.read


def _slow_read(self, index):
    time.sleep(float(os.environ["EGOMASK_TEST_FRAME_DELAY"]))
    return _read(self, index)


base.Frames.read = _slow_read
'''

pytestmark = pytest.mark.django_db(transaction=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def slow_worker(framed_phase, baseline_settings, results_backend, monkeypatch, tmp_path  # noqa: F811
                ) -> Iterator[tuple[object, Path]]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_READS)
    for name in ("BASELINE_FRAMES_DIR", "BASELINE_WORK_DIR"):
        monkeypatch.setenv(name, str(getattr(baseline_settings, name)))
    extra = {"PYTHONPATH": str(hooks), "EGOMASK_TEST_FRAME_DELAY": "0.02", "BASELINE_PROGRESS_EVERY": "0",
             "BASELINE_LEASE_SECONDS": "2"}
    log = tmp_path / "worker.log"
    with processes.redis_broker(BROKER_URL), processes.celery_worker(BROKER_URL, log, queues="gpu,scoring",
                                                                   pool="prefork", env=extra) as child:
        yield child, log


def _wait_for(log: Path, what: str, done) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}"
        time.sleep(0.2)


def test_it_resumes_a_shard_after_its_worker_process_is_killed(framed_phase, organizer, framed, slow_worker,
                                                                tmp_path):
    worker, log = slow_worker
    baseline = baseline_run_queue(phase=framed_phase, user=organizer, runner="colour", shards=1)
    shard = ShardRun.objects.get(run=baseline, index=0)

    def some_done() -> bool:
        shard.refresh_from_db()
        return shard.expressions_done >= 3

    _wait_for(log, "three expressions of the shard", some_done)
    assert shard.expressions_done < shard.expressions_total, "the shard ended before the kill: slow it down more"
    pool = _children(worker.pid)
    assert len(pool) == 1, pool
    os.kill(pool[0], signal.SIGKILL)
    killed_at = time.monotonic()

    def ended() -> bool:
        baseline.refresh_from_db()
        return baseline.status in (BaselineRun.Status.FINISHED, BaselineRun.Status.FAILED)

    _wait_for(log, f"run {baseline.pk} to end", ended)
    recovered_in = time.monotonic() - killed_at
    assert (baseline.status, baseline.error) == (BaselineRun.Status.FINISHED, "")
    shard.refresh_from_db()
    assert shard.status == ShardRun.Status.FINISHED and shard.claims == 2  # taken over once, after the kill
    assert shard.expressions_skipped >= 3  # what the killed process had written was not computed again
    # Exactly one baseline submission, scored once, holding what one uninterrupted run writes.
    assert Submission.objects.filter(phase=framed_phase, is_baseline=True).count() == 1
    assert baseline.submission.status == Submission.Status.FINISHED
    with zipfile.ZipFile(io.BytesIO(framed["gt_zip"])) as gt:
        (tmp_path / "meta_expressions.json").write_bytes(gt.read("meta_expressions.json"))
    run(get_runner("colour"), jobs=load_jobs(tmp_path / "meta_expressions.json"), frames=framed["frames"],
        out=tmp_path / "expected.zip")
    with baseline.submission.file.open("rb") as handle:
        assert handle.read() == (tmp_path / "expected.zip").read_bytes()
    print(json.dumps({"recovered_in_s": round(recovered_in, 1)}))
