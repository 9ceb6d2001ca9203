"""Fault-injection harness shared by the kill test (tests/leaderboard/test_worker_killed.py) and the kill loop
(benchmarks/fault_kill_loop.py): real worker processes on a real Redis broker and PostgreSQL, killed with
SIGKILL in the middle of scoring, and a database trigger that records every status change, so a run can
check that no status ever went backwards within an attempt.

Framework pieces only (no pytest): the callers own the database and the submissions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.db import connection
from django.db.models import Count

from leaderboard.submissions.models import Score, Submission

from .processes import worker_env

ROOT = Path(__file__).resolve().parents[2]
FAULT_WORKER = Path(__file__).with_name("fault_worker.py")
ORDER = {"submitted": 0, "validating": 1, "scoring": 2, "finished": 3, "failed": 3, "cancelled": 3}


@dataclasses.dataclass
class Worker:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        output = self.log.open("ab")
        output.write(f"\n--- start {self.starts} ---\n".encode())
        output.flush()
        # A session of its own: killing the worker "whole" (its main process and pool) is one killpg.
        self.process = subprocess.Popen([sys.executable, str(FAULT_WORKER), *self.args], cwd=ROOT, env=self.env,
                                        stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        output.close()

    def pids(self) -> set[int]:
        """The main process and its pool children."""
        if self.process is None or self.process.poll() is not None:
            return set()
        main = self.process.pid
        return {main} | _children(main)

    def kill_whole(self) -> None:
        """SIGKILL the main process and its pool (a container OOM-killed, a machine lost)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill_whole()

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":  # a killed child stays a zombie until reaped
                    found.add(int(entry.name))
    return found


class Cluster:
    """Two scoring workers (prefork, one pool process each) and one maintenance worker with beat (the
    reconciler), as docker/compose.yml runs them, on the broker `broker_url` and the current database."""

    def __init__(self, broker_url: str, log_dir: Path, *, delay: str = "2,3", env: dict[str, str] | None = None):
        base = {**worker_env(broker_url), "FAULT_SCORING_DELAY": delay, **(env or {})}
        common = ["--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
        self.scoring = [Worker(name, ["-Q", "scoring", "-c", "1", "-P", "prefork", "-n", f"{name}@%h", *common],
                               base, log_dir / f"worker-{name}.log") for name in ("a", "b")]
        self.maintenance = Worker("m", ["-Q", "maintenance", "-c", "1", "-P", "solo", "-B", "-n", "m@%h",
                                        "-s", str(log_dir / "celerybeat-schedule"), *common], base,
                                  log_dir / "worker-m.log")

    @property
    def workers(self) -> list[Worker]:
        return [*self.scoring, self.maintenance]

    def __enter__(self) -> Cluster:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()

    def holder(self, submission: Submission) -> tuple[Worker, int] | None:
        """The scoring worker and the process that hold the submission's lease, if one of ours does."""
        parts = submission.lease_owner.split(":")
        if len(parts) < 3 or not parts[1].isdigit():
            return None
        pid = int(parts[1])
        for worker in self.scoring:
            if pid in worker.pids():
                return worker, pid
        return None

    def logs(self) -> str:
        return "\n".join(f"== {w.name} ==\n{w.tail()}" for w in self.workers)


# --- the status history ---------------------------------------------------------------------------

_TRIGGER = """
CREATE TABLE IF NOT EXISTS fault_status_log (id bigserial PRIMARY KEY, submission_id bigint NOT NULL,
    attempt integer NOT NULL, status text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION fault_log_status() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status OR NEW.attempt IS DISTINCT FROM OLD.attempt THEN
        INSERT INTO fault_status_log (submission_id, attempt, status) VALUES (NEW.id, NEW.attempt, NEW.status);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS fault_status ON submissions_submission;
CREATE TRIGGER fault_status AFTER INSERT OR UPDATE ON submissions_submission
    FOR EACH ROW EXECUTE FUNCTION fault_log_status();
"""


@contextlib.contextmanager
def status_history() -> Iterator[None]:
    """Record every status change of every submission (PostgreSQL) until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute(_TRIGGER)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS fault_status ON submissions_submission; "
                           "DROP TABLE IF EXISTS fault_status_log; DROP FUNCTION IF EXISTS fault_log_status();")


def backwards_moves() -> list[str]:
    """Each time a status moved backwards within an attempt (or an attempt number went down)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT submission_id, attempt, status FROM fault_status_log ORDER BY id")
        rows = cursor.fetchall()
    last: dict[int, tuple[int, str]] = {}
    problems = []
    for submission_id, attempt, status in rows:
        if submission_id in last:
            previous_attempt, previous = last[submission_id]
            if attempt < previous_attempt or (attempt == previous_attempt and ORDER[status] < ORDER[previous]):
                problems.append(f"submission {submission_id}: attempt {previous_attempt} {previous} -> "
                                f"attempt {attempt} {status}")
        last[submission_id] = (attempt, status)
    return problems


def attempts_seen() -> dict[int, set[int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT submission_id, attempt FROM fault_status_log")
        seen: dict[int, set[int]] = defaultdict(set)
        for submission_id, attempt in cursor.fetchall():
            seen[submission_id].add(attempt)
    return seen


def duplicate_scores(ids: Iterable[int]) -> list[tuple[int, str, int]]:
    """(submission, split, rows) for every split scored more than once."""
    return [(row["submission"], row["split"], row["n"]) for row in
            Score.objects.filter(submission__in=list(ids)).values("submission", "split").annotate(n=Count("id"))
            .filter(n__gt=1)]


# --- killing mid-score ----------------------------------------------------------------------------


def wait_until_scored_by(cluster: Cluster, ids: Iterable[int], timeout: float,
                         killed: Iterable[tuple[int, int]] = ()) -> tuple[Submission, Worker, int]:
    """A submission among `ids` that one of the cluster's live processes is scoring now, with that process;
    not one of the (submission, attempt) pairs in `killed`, whose worker is dead already."""
    ids, killed = list(ids), set(killed)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for submission in Submission.objects.filter(pk__in=ids, status=Submission.Status.SCORING):
            found = None if (submission.pk, submission.attempt) in killed else cluster.holder(submission)
            if found is not None:
                return submission, *found
        time.sleep(0.02)
    raise AssertionError(f"nothing was being scored within {timeout} s\n{cluster.logs()}")


def wait_terminal(ids: Iterable[int], timeout: float, cluster: Cluster) -> dict[int, float]:
    """Wait until every submission in `ids` is finished, failed or cancelled; when each got there
    (time.monotonic())."""
    pending, done = set(ids), {}
    deadline = time.monotonic() + timeout
    while pending:
        for submission in Submission.objects.filter(pk__in=pending, status__in=Submission.TERMINAL):
            done[submission.pk] = time.monotonic()
            pending.discard(submission.pk)
        if pending and time.monotonic() > deadline:
            states = list(Submission.objects.filter(pk__in=pending).values_list("pk", "status", "attempt"))
            raise AssertionError(f"not finished after {timeout} s: {states}\n{cluster.logs()}")
        time.sleep(0.05)
    return done
