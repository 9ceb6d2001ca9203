"""A scoring worker SIGKILLed in the middle of scoring (issue 9, defect 2): the submission is finished by
another worker within 30 s, with exactly one set of scores, and no status ever goes backwards within an
attempt. Real processes: two prefork scoring workers and the maintenance worker with beat (the reconciler),
as docker/compose.yml runs them, on a Redis broker of this file's own and the test database; the scorer
is slowed by fault_worker.py so the kill lands mid-score. The long form is benchmarks/fault_kill_loop.py."""

from __future__ import annotations

import os
import signal
import time

import pytest

from leaderboard.submissions.models import Score, Submission

from . import faults, processes

pytestmark = pytest.mark.django_db(transaction=True)
BROKER_URL = "redis://127.0.0.1:6379/1"  # this file's own database
TARGET = 30.0  # seconds from the kill to the submission finished by another worker


def test_a_killed_pool_process_and_a_killed_worker_each_cost_seconds_and_no_scores(alice, phase, submit,
                                                                                   tmp_path):
    with processes.redis_broker(BROKER_URL), faults.status_history(), \
            faults.Cluster(BROKER_URL, tmp_path, delay="2,3") as cluster:
        submissions = [submit(alice, method_name=f"run {i}") for i in range(3)]
        ids = [s.pk for s in submissions]
        kills = []
        for how in ("pool process", "whole worker"):
            victim, worker, pid = faults.wait_until_scored_by(cluster, ids, timeout=60,
                                                              killed=[(pk, attempt) for _, pk, attempt, _ in kills])
            if how == "pool process":
                assert pid != worker.process.pid, "a prefork worker scores in its pool process"
                os.kill(pid, signal.SIGKILL)
            else:
                worker.kill_whole()
            kills.append((how, victim.pk, victim.attempt, time.monotonic()))
            if how == "whole worker":
                time.sleep(1)
                worker.start()  # a supervisor (compose's restart policy) brings it back
        done = faults.wait_terminal(ids, timeout=120, cluster=cluster)
        backwards = faults.backwards_moves()
        attempts = faults.attempts_seen()

    recovery = {how: done[pk] - at for how, pk, _, at in kills}
    assert all(seconds <= TARGET for seconds in recovery.values()), (recovery, cluster.logs())
    for how, pk, attempt, _ in kills:
        assert max(attempts[pk]) > attempt, f"{how}: submission {pk} was not retried as a new attempt"
    assert backwards == []
    assert faults.duplicate_scores(ids) == []
    for submission in Submission.objects.filter(pk__in=ids):
        assert submission.status == Submission.Status.FINISHED, (submission.failure_message, cluster.logs())
        assert Score.objects.filter(submission=submission).count() == 4
    print("kills:", [(how, pk, attempt) for how, pk, attempt, _ in kills],
          "recovery seconds:", {how: round(s, 1) for how, s in recovery.items()})
