"""The kill loop, the board load, board statistics and exports benchmarks in a short form (CI), so the scripts
whose full runs give the figures in the README keep working: each must end with exit 0, which they give only
when nothing was lost, nothing was scored twice, no status went backwards (the kill loop; its recovery target
too), no request failed (the board benchmark; its speed targets depend on the machine and are only printed)
and every submission and results file was exported (the exports benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys

from .processes import ROOT


def _run(*command: str, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "CACHE_"))}
    result = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_the_kill_loop_kills_twice_and_loses_nothing():
    out = _run("benchmarks/fault_kill_loop.py", "--kills", "2", "--database", "egomask_faults_ci",
               "--broker", "redis://127.0.0.1:6379/6")
    assert "lost 0 · splits scored twice 0 · statuses that went backwards 0" in out
    assert "kills 2 (" in out and out.rstrip().endswith("OK")


def test_the_board_load_benchmark_serves_every_request():
    out = _run("benchmarks/bench_board_load.py", "--submissions", "600", "--teams", "60", "--seconds", "2",
               "--rate", "50", "--score-every", "1", "--db", "egomask_load_ci", "--port", "18432")
    rows = [line for line in out.splitlines() if line.startswith(("JSON board", "HTML page"))]
    assert len(rows) == 5, out
    assert "Seeded 600 submissions" in out and "from 60 teams" in out


def test_the_exports_benchmark_streams_every_submission_and_file():
    out = _run("benchmarks/bench_exports.py", "--submissions", "300", "--teams", "30", "--details", "12",
               "--db", "egomask_exports_ci")
    assert "300 submissions, 12 with a results file" in out
    assert "complete: 300 of 300 submissions in the JSON, 12 results files and the manifest in the zip: OK" in out


def test_the_board_statistics_benchmark_times_both_rebuilds():
    out = _run("benchmarks/bench_board_statistics.py", "--submissions", "300", "--teams", "30", "--repeat", "1",
               "--db", "egomask_bench_stats_ci")
    assert "with    statistics: best" in out and "without statistics: best" in out
    assert "the statistics add" in out
