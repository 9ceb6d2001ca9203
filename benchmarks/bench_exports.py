"""The organizers' exports at the size of a long challenge: a phase of 10 000 scored submissions from 1 000
teams (`manage.py seed_load`), of which `--details` carry a stored per-expression results file of
realistic size (one row per expression of the real benchmark, ~1 200 rows), exported as the server streams
them (exports.phase_export, the code behind the API and `manage.py export_phase`). Exit 1 unless every
submission is in the JSON export and every results file in the zip.

    python benchmarks/bench_exports.py [--submissions 10000 --teams 1000] [--details 1000] [--db egomask_exports]

Needs PostgreSQL on 127.0.0.1 (the database `--db` is dropped and made again). For each export it prints the
time to the last byte, the size, the number of SQL queries, and the process's peak memory growth while
streaming (tracemalloc peak of Python allocations, and the resident set's high-water mark): the targets
are constant memory and a query count that grows by batches, not by rows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environment(db: str, var: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("S3_BUCKET", "DEBUG")}
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}", "CACHE_URL": "redis://127.0.0.1:6379/8",
                "SITE_URL": "http://127.0.0.1:8000",
                "SECRET_KEY": "bench-exports-" + "x" * 40, "EGOMASK_VAR_DIR": str(var),
                "DJANGO_SETTINGS_MODULE": "leaderboard.settings", "PYTHONPATH": str(ROOT)})
    return env


def measure(args: argparse.Namespace) -> None:
    """In a process with Django set up: the details files, then each export streamed to /dev/null."""
    import resource
    import time
    import tracemalloc

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leaderboard.challenges.models import Phase
    from leaderboard.submissions.exports import EXPORTS, phase_export
    from leaderboard.submissions.models import Submission

    phase = Phase.objects.select_related("challenge").get(challenge__slug="load", slug="main")
    user = get_user_model().objects.create_superuser("bench-exports", "bench@example.org", None)
    # Realistic per-expression files: the scorer's columns, one row per expression of the full benchmark.
    header = "split,video,expression,T_recall,IoU_all,IoU_gold,IoU_gold_pred,gold_frames,pred_frames\n"
    row = "long,P01_01_0001,the red mug on the left of the kettle,{:.6f},{:.6f},{:.6f},{:.6f},412,398\n"
    body = (header + "".join(row.format(i / 1200, i / 1300, i / 1400, i / 1500) for i in range(1200))).encode()
    # As the scorer leaves them: on finished submissions (the zip holds those only).
    for submission in Submission.objects.filter(phase=phase, status=Submission.Status.FINISHED).order_by("pk")[
            :args.details]:
        submission.details.save("results.csv", ContentFile(body), save=True)
    print(f"{Submission.objects.filter(phase=phase).count()} submissions, {args.details} with a results file of "
          f"{len(body) / 1024:.0f} KiB")
    print(f"{'export':18s} {'seconds':>8s} {'MiB out':>8s} {'queries':>8s} {'py peak MiB':>12s} {'RSS +MiB':>9s}")
    for name in EXPORTS:
        # Timed on its own (tracemalloc slows Python down several times), then streamed again for the memory.
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, size = time.perf_counter(), 0
        with CaptureQueriesContext(connection) as queries:
            for chunk in phase_export(phase=phase, name=name, by=user).chunks:
                size += len(chunk)
        seconds = time.perf_counter() - started
        rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        tracemalloc.start()
        for _ in phase_export(phase=phase, name=name, by=user).chunks:
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{name:18s} {seconds:8.2f} {size / 2**20:8.1f} {len(queries):8d} {peak / 2**20:12.1f} "
              f"{rss_growth:9.1f}")
    # What came out is complete: every submission in the JSON, every results file (and the manifest) in the zip.
    listed = json.loads(b"".join(phase_export(phase=phase, name="submissions.json", by=user).chunks))["submissions"]
    with zipfile.ZipFile(io.BytesIO(b"".join(phase_export(phase=phase, name="results.zip", by=user).chunks))) as z:
        entries = len(z.namelist())
    total = Submission.objects.filter(phase=phase).count()
    complete = len(listed) == total and entries == args.details + 1
    print(f"complete: {len(listed)} of {total} submissions in the JSON, {entries - 1} results files and the manifest "
          f"in the zip: {'OK' if complete else 'INCOMPLETE'}")
    if not complete:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=10000)
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--details", type=int, default=1000)
    parser.add_argument("--db", default="egomask_exports")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as var:
        env = environment(args.db, Path(var))
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c"]
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {args.db}"], check=True, env=env)
        subprocess.run([*psql, f"CREATE DATABASE {args.db}"], check=True, env=env)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)
        subprocess.run([*manage, "seed_load", "--phase", "load/main", "--submissions", str(args.submissions),
                        "--teams", str(args.teams)], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, __file__, "--measure", "--details", str(args.details)], check=True, env=env,
                       cwd=ROOT)
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {args.db}"], check=False, env=env)


if __name__ == "__main__":
    main()
