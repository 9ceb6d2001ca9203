"""A real Celery worker process, a real Redis broker and the real enqueue path (on_commit -> delay).

The data must be committed for the worker to see it, hence `transactional_db`. The broker is a Redis
database of its own, flushed before and after, so nothing else's messages are consumed.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.services import submission_create
from leaderboard.submissions.tasks import score_submission
from scoring import METRICS

from . import processes

BROKER_DB = 13  # used by this module only
BROKER_URL = f"redis://127.0.0.1:6379/{BROKER_DB}"
QUEUE = "scoring"
TIMEOUT = 60.0

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_broker() -> Iterator[redis.Redis]:
    with processes.redis_broker(BROKER_URL) as client:
        yield client


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]


@pytest.fixture
def worker(redis_broker, phase, tmp_path) -> Iterator[Worker]:
    """`celery worker` on the scoring queue, seeing the test database and the same private files."""
    log_path = tmp_path / "worker.log"
    with processes.celery_worker(BROKER_URL, log_path, queues=QUEUE) as process:
        yield Worker(process, log_path)


def _wait(worker: Worker, what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        code = worker.process.poll()
        assert code is None, f"the worker exited ({code}) before {what}:\n{worker.log()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}; worker log:\n{worker.log()}"
        time.sleep(0.2)


def _wait_terminal(worker: Worker, submission: Submission) -> Submission:
    def terminal() -> bool:
        submission.refresh_from_db()
        return submission.is_terminal

    _wait(worker, f"submission {submission.pk} to finish", terminal)
    return submission


def _drained(client: redis.Redis) -> bool:
    """No message waiting in the queue (any priority) and none delivered but not yet acknowledged."""
    waiting = sum(client.llen(key) for key in client.scan_iter(match=f"{QUEUE}*") if client.type(key) == b"list")
    return waiting == 0 and client.hlen("unacked") == 0


def test_it_scores_a_committed_submission_in_a_real_worker(redis_broker, worker, alice, phase, prediction_zip):
    submission = submission_create(phase=phase, user=alice, file=io.BytesIO(prediction_zip("perfect")),
                                   method_name="Through Redis")
    submission = _wait_terminal(worker, submission)

    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    assert submission.attempt == 1
    scores = {s.split: s for s in Score.objects.filter(submission=submission)}
    assert sorted(scores) == ["long", "medium", "overall", "short"]
    for row in scores.values():
        assert row.metrics() == {m: 100.0 for m in METRICS}
        assert row.gt_version == phase.ground_truth.version
    assert submission.details.name
    _wait(worker, "the queue to drain", lambda: _drained(redis_broker))


def test_it_scores_once_when_the_task_is_delivered_twice(redis_broker, worker, alice, phase, prediction_zip):
    submission = submission_create(phase=phase, user=alice, file=io.BytesIO(prediction_zip("good")),
                                   method_name="Duplicated")
    score_submission.delay(submission.pk, 1)  # the same message again, as a redelivery would be
    submission = _wait_terminal(worker, submission)
    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    first = list(Score.objects.filter(submission=submission).order_by("split").values())
    finished_at = submission.finished_at

    _wait(worker, "both deliveries to be handled", lambda: _drained(redis_broker))

    submission.refresh_from_db()
    assert (submission.status, submission.attempt, submission.finished_at) == (
        Submission.Status.FINISHED, 1, finished_at)
    assert list(Score.objects.filter(submission=submission).order_by("split").values()) == first
    assert len(first) == 4
    handled = [line for line in worker.log(tail=10**7).splitlines()
               if "leaderboard.submissions.tasks.score_submission[" in line and "succeeded" in line]
    assert len(handled) == 2, worker.log()
