"""Kill loop: SIGKILL scoring workers at random moments while they score, and check that nothing is lost.

    python benchmarks/fault_kill_loop.py [--kills 20] [--per-kill 2] [--delay 1,3] [--seed 1]

Real processes (tests/leaderboard/faults.py): two prefork scoring workers and the maintenance worker with
beat (the reconciler), on a Redis database of this script's own (db 1) and a PostgreSQL database of its
own (egomask_faults). The scorer is slowed by --delay seconds (fault_worker.py) so that kills land in the
middle of scoring. Each round uploads --per-kill submissions (so both workers are busy), picks one of them
while it is being scored, waits a random moment, and kills either the pool process scoring it or the whole
worker (main process and pool; it is restarted a second later, as a supervisor would), then waits for the
round's submissions to finish. Then it checks: every submission finished (0 lost),
no split scored twice, no status that went backwards within an attempt (a trigger records them all),
and prints the time from each kill to the submission finished by another worker. Exit 1 if any check
fails or a recovery took longer than --target seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultbench import percentile, setup  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--per-kill", type=int, default=2, help="submissions uploaded per round")
    parser.add_argument("--delay", default="1,3", help="extra scoring seconds, low,high")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, default=30.0)
    parser.add_argument("--database", default="egomask_faults")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/1")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    world = setup(args.database)

    from leaderboard.submissions.models import Score, Submission
    from leaderboard.submissions.services import submission_create
    from tests.leaderboard import faults, processes

    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="fault-kill-loop-"))
    kills: list[tuple[str, int, float]] = []
    with processes.redis_broker(args.broker), faults.status_history(), \
            faults.Cluster(args.broker, logs, delay=args.delay) as cluster:
        ids: list[int] = []
        done: dict[int, float] = {}
        low = float(args.delay.split(",")[0])
        while len(kills) < args.kills:
            batch = [submission_create(phase=world["phase"], user=world["user"], file=io.BytesIO(world["new_zip"]()),
                                       method_name=f"run {len(ids) + i}").pk for i in range(args.per_kill)]
            ids += batch
            victim, worker, pid = faults.wait_until_scored_by(cluster, batch, timeout=120)
            time.sleep(rng.uniform(0, low * 0.8))  # a random moment inside the scoring
            current = Submission.objects.get(pk=victim.pk)
            if current.status == Submission.Status.SCORING and current.lease_owner == victim.lease_owner:
                how = rng.choice(["pool process", "whole worker"])
                if how == "pool process":
                    os.kill(pid, signal.SIGKILL)
                else:
                    worker.kill_whole()
                    threading.Timer(1.0, worker.start).start()  # the supervisor brings it back
                kills.append((how, victim.pk, time.monotonic()))
                print(f"kill {len(kills):2d}: {how:12s} scoring submission {victim.pk} (attempt {victim.attempt})",
                      end="", flush=True)
            done.update(faults.wait_terminal(batch, timeout=300, cluster=cluster))
            if kills and kills[-1][1] in batch:
                print(f" -> finished {done[kills[-1][1]] - kills[-1][2]:.1f} s later", flush=True)
        backwards = faults.backwards_moves()
        duplicates = faults.duplicate_scores(ids)
        time.sleep(1.5)  # let a restarting worker come up before the cluster stops

    finished = Submission.objects.filter(pk__in=ids, status=Submission.Status.FINISHED)
    complete = sum(1 for s in finished if Score.objects.filter(submission=s).count() == 4)
    lost = len(ids) - complete
    recovery = [done[pk] - at for _, pk, at in kills]
    by_kind = {kind: [done[pk] - at for how, pk, at in kills if how == kind] for kind in ("pool process",
                                                                                         "whole worker")}
    print()
    print(f"submissions {len(ids)} · kills {len(kills)} ({len(by_kind['pool process'])} pool process, "
          f"{len(by_kind['whole worker'])} whole worker) · {time.monotonic() - started:.0f} s in all")
    print(f"lost {lost} · splits scored twice {len(duplicates)} · statuses that went backwards {len(backwards)}")
    print("recovery, kill -> finished by another worker (s):")
    for kind, values in (("all", recovery), *by_kind.items()):
        if values:
            print(f"  {kind:12s} n={len(values):2d}  min {min(values):5.1f}  median {statistics.median(values):5.1f}"
                  f"  p90 {percentile(values, 0.9):5.1f}  max {max(values):5.1f}")
    for line in backwards[:10]:
        print("  backwards:", line)
    ok = lost == 0 and not duplicates and not backwards and max(recovery) <= args.target
    print("OK" if ok else f"FAILED (see the worker logs in {logs})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
