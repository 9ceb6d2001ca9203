"""What the boards' statistics cost: a phase's board rebuild with and without intervals and tie groups.

    python benchmarks/bench_board_statistics.py [--submissions 10000] [--teams 1000] [--repeat 5]
                                                [--db egomask_bench_stats]

Two phases are seeded with `manage.py seed_load` on PostgreSQL (the database `--db` is dropped and made
again): one with the per-expression analyses a worker stores (700 expressions laid out as EgoMask's 315
videos, B = 1000), one without (`--no-statistics`). Then `board_refresh` is timed on each, `--repeat`
times: the whole computation of the four boards (ranking, the intervals read, the paired tests between
neighbours on every split, Holm, the digest), which every scored submission's end runs in its transaction.
Prints the best and median of each, the difference, and how many tie groups the boards have (exit 1 unless
the boards with statistics have groups and the others none).

Measured on the 2-core development machine (2026-12-01), 10 000 submissions from 1 000 teams: best of 5,
0.500 s with the statistics, 0.437 s without: the paired tests of 994 ranked rows on four boards add 0.06 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default="egomask_bench_stats")
    args = parser.parse_args()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", args.db], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.db], check=True)
    os.environ.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
                       "DJANGO_SETTINGS_MODULE": "leaderboard.settings_test", "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from leaderboard.challenges.models import Phase
    from leaderboard.submissions.boards import board_refresh
    from leaderboard.submissions.models import BoardRow

    call_command("migrate", verbosity=0)
    seeded = {}
    for name, extra in (("with", []), ("without", ["--no-statistics"])):
        started = time.perf_counter()
        call_command("seed_load", "--phase", f"load/{name}", "--submissions", str(args.submissions), "--teams",
                     str(args.teams), *extra, stdout=open(os.devnull, "w"))  # noqa: SIM115
        seeded[name] = time.perf_counter() - started
    print(f"board rebuild, {args.submissions} submissions from {args.teams} teams, {os.cpu_count()} CPUs:")
    best, found = {}, {}
    for name in ("with", "without"):
        phase = Phase.objects.get(challenge__slug="load", slug=name)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            board_refresh(phase_id=phase.pk)
            times.append(time.perf_counter() - started)
        best[name] = min(times)
        rows = BoardRow.objects.filter(phase=phase, rank__isnull=False)
        groups = {split: rows.filter(split=split, tie_group__isnull=False).values("tie_group").distinct().count()
                  for split in ("short", "medium", "long", "overall")}
        found[name] = sum(groups.values())
        print(f"  {name:7s} statistics: best {min(times):.3f} s, median {statistics.median(times):.3f} s "
              f"(seeded in {seeded[name]:.1f} s); ranked rows {rows.filter(split='overall').count()}, "
              f"tie groups per board {groups}")
    print(f"  the statistics add {best['with'] - best['without']:.3f} s to a rebuild")
    if not found["with"] or found["without"]:
        sys.exit("the boards with statistics must have tie groups, and those without none")


if __name__ == "__main__":
    main()
