"""The leaderboard under load: gunicorn (4 workers) on production settings, a phase of 10 000 scored
submissions from 1 000 teams, a submission scored every few seconds meanwhile, and the boards measured
with wrk (closed loop) and with requests sent at a fixed rate (open loop; hey -q beside it).

    python benchmarks/bench_board_load.py [--submissions 10000 --teams 1000] [--seconds 20] [--rate 200]
                                          [--score-every 3] [--db egomask_load] [--cache-db 8] [--broker-db 7]

Needs PostgreSQL and Redis on 127.0.0.1 (the database `--db` is dropped and made again, the Redis
databases `--cache-db` and `--broker-db` are emptied), `wrk` and `hey` (Debian: apt-get install -y wrk hey).

1. `manage.py migrate`, then `manage.py seed_load --phase load/main` (the boards are built the normal way).
2. gunicorn `leaderboard.wsgi`, 4 sync workers, DATABASE_URL, CACHE_URL (Redis), SECRET_KEY set: the
   production settings; private storage in a temporary folder.
3. A scorer in its own process: every `--score-every` seconds a load team submits a real zip (a tiny
   synthetic benchmark is the phase's ground truth) through submission_create, and it is scored with
   submission_score, the code a worker runs: each one rebuilds the phase's boards, and bumps their version
   when a row changed, so the measurements run against boards that change (the cached renderings go
   stale every few seconds).
4. JSON board, closed loop: `wrk -t2 -c50 -d20s --latency` (target: at least 500 requests/s).
   JSON board and HTML page, paced: 200 requests/s sent evenly, one every 5 ms whatever the answers do,
   each latency counted from the time its request was due (run_paced; targets: p99 at most 50 ms for the
   JSON, 150 ms for the page, no errors). For comparison with the issue's figures, the same with
   `hey -z 20s -c 50 -q 4`: its 50 clients tick together, so it sends bursts of 50 every 250 ms (the
   queue a burst makes is in its latencies), and a client waiting on an answer sends late.
The table at the end has the numbers, the machine's load average before and during the run, and what
the scorer did. Exit 1 if any request failed (the speed targets are for reading: they depend on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASE = "load/main"
PAGE = "/challenges/load/phases/main/leaderboard/overall/"


def environment(args: argparse.Namespace, var: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("S3_BUCKET", "DEBUG")}
    env.update({
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
        "CACHE_URL": f"redis://127.0.0.1:6379/{args.cache_db}", "SITE_URL": "http://127.0.0.1:8000",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{args.broker_db}",  # scoring tasks are sent, never run
        "SECRET_KEY": secrets.token_urlsafe(50), "EGOMASK_VAR_DIR": str(var), "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_COOKIES": "0", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "leaderboard.settings",
        "PYTHONPATH": str(ROOT),
    })
    return env


def fresh_database(args: argparse.Namespace) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    empty_redis(args)


def empty_redis(args: argparse.Namespace) -> None:
    """The cache, and the broker the scorer's submissions send their (never consumed) scoring tasks to."""
    import redis

    for db in (args.cache_db, args.broker_db):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def phase_pk(args: argparse.Namespace) -> int:
    import psycopg

    challenge, phase = PHASE.split("/")
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{args.db}") as conn:
        return conn.execute("SELECT p.id FROM challenges_phase p JOIN challenges_challenge c ON c.id = p.challenge_id "
                            "WHERE c.slug = %s AND p.slug = %s", (challenge, phase)).fetchone()[0]


def manage(env: dict[str, str], *command: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"manage.py {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{url} did not answer 200 within {seconds} s")
        time.sleep(0.5)


def cpu_seconds(parent: int) -> float:
    """CPU time (user + system) the parent's child processes (gunicorn's workers) have used so far (Linux)."""
    total = 0
    for task in Path(f"/proc/{parent}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url: str, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", url], capture_output=True, text=True,
                         check=True).stdout
    latency = {p: _seconds(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"offered": None, "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": latency["50"], "p99": latency["99"], "errors": errors, "requests": requests, "raw": out}


def run_hey(url: str, seconds: int, rate: int, clients: int = 50) -> dict[str, float]:
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(clients), "-q", f"{rate / clients:g}", url],
                         capture_output=True, text=True, check=True).stdout
    latency = {p: float(v) for p, v in re.findall(r"^\s+(50|99)% in ([\d.]+) secs", out, re.M)}
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    failed = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s+Get ", out, re.M))
    return {"offered": rate, "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": latency.get("50", float("nan")), "p99": latency.get("99", float("nan")),
            "errors": sum(n for c, n in codes.items() if c != 200) + failed, "requests": sum(codes.values()),
            "raw": out}


def run_paced(url: str, seconds: int, rate: int, timeout: float = 10.0) -> dict[str, float]:
    """Open loop: request i is sent at start + i/rate whatever the answers before it do, each on its own
    connection (gunicorn's sync workers close it anyway); its latency counts from that scheduled time,
    so a server that falls behind is seen in the numbers instead of slowing the sender down."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()

    async def run() -> list[tuple[float, bool]]:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.5

        async def one(index: int) -> tuple[float, bool]:
            scheduled = start + index / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            try:
                async with asyncio.timeout(timeout):
                    reader, writer = await asyncio.open_connection(host, port)
                    writer.write(request)
                    status = await reader.readline()
                    while await reader.read(1 << 16):
                        pass
                    writer.close()
                ok = status.split(b" ")[1:2] == [b"200"]
            except (OSError, TimeoutError):
                ok = False
            return loop.time() - scheduled, ok

        return await asyncio.gather(*(one(i) for i in range(int(rate * seconds))))

    results = asyncio.run(run())
    latencies = sorted(latency for latency, _ in results)
    return {"offered": rate, "rate": len(results) / (seconds + latencies[-1]),
            "p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
            "errors": sum(1 for _, ok in results if not ok), "requests": len(results), "raw": ""}


# --- the scorer (its own process) -----------------------------------------------------------------


def scorer(every: float, log: Path, stop: Path) -> None:
    """Every `every` seconds a load team submits a real zip, scored as a worker scores it."""
    import io

    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from leaderboard.accounts.models import Membership
    from leaderboard.challenges.models import Phase
    from leaderboard.challenges.services import ground_truth_check, ground_truth_create
    from leaderboard.submissions import boards, grading
    from leaderboard.submissions.models import Board
    from leaderboard.submissions.services import submission_create
    from scoring.synth import synthesize, synthesize_predictions

    from bench_scoring import zip_folder  # the same folder: benchmarks/ is on the path

    challenge_slug, phase_slug = PHASE.split("/")
    phase = Phase.objects.select_related("challenge").get(challenge__slug=challenge_slug, slug=phase_slug)
    work = Path(tempfile.mkdtemp(prefix="egomask-bench-scorer-"))
    gt = synthesize(work / "gt", scale="tiny", seed=5)
    bundle = ground_truth_create(challenge=phase.challenge, name="tiny (load test)",
                                 file=io.BytesIO(zip_folder(gt, work / "gt.zip").read_bytes()), filename="gt.zip")
    phase.ground_truth = ground_truth_check(bundle_id=bundle.pk)
    phase.save()
    zips = [zip_folder(synthesize_predictions(gt, work / f"pred-{q}", quality=q, seed=3), work / f"{q}.zip")
            .read_bytes() for q in ("good", "noisy", "empty")]
    owners = list(get_user_model().objects.filter(
        pk__in=Membership.objects.filter(challenge=phase.challenge, role=Membership.Role.OWNER).values("user_id")))
    # Time each rebuild (board_changed calls the module's board_refresh).
    rebuilds: list[float] = []
    refresh = boards.board_refresh

    def timed_refresh(**kwargs: object) -> object:
        begun = time.perf_counter()
        try:
            return refresh(**kwargs)
        finally:
            rebuilds.append(time.perf_counter() - begun)

    boards.board_refresh = timed_refresh
    rng = random.Random(1)
    with log.open("w") as out:
        while not stop.exists():
            started = time.monotonic()
            rebuilds.clear()
            submission = submission_create(phase=phase, user=rng.choice(owners), file=io.BytesIO(rng.choice(zips)),
                                           method_name="scored during the load test")
            grading.submission_score(submission_id=submission.pk, attempt=submission.attempt)
            out.write(json.dumps({"seconds": time.monotonic() - started, "refresh": sum(rebuilds),
                                  "version": Board.objects.get(phase=phase).version}) + "\n")
            out.flush()
            time.sleep(max(0.0, every - (time.monotonic() - started)))


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=1_000)
    parser.add_argument("--seconds", type=int, default=20, help="each measurement's length")
    parser.add_argument("--rate", type=int, default=200, help="requests/s the paced clients offer")
    parser.add_argument("--score-every", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", help="gunicorn's (production runs sync); e.g. gthread, "
                        "which keeps connections open between requests")
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--db", default="egomask_load")
    parser.add_argument("--cache-db", type=int, default=8)
    parser.add_argument("--broker-db", type=int, default=7)
    parser.add_argument("--scorer", nargs=3, metavar=("EVERY", "LOG", "STOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scorer:
        scorer(float(args.scorer[0]), Path(args.scorer[1]), Path(args.scorer[2]))
        return
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install -y {tool})")

    var = Path(tempfile.mkdtemp(prefix="egomask-bench-load-"))
    env = environment(args, var)
    load_before = os.getloadavg()
    fresh_database(args)
    manage(env, "migrate", "--noinput", "-v0")
    started = time.perf_counter()
    seeded = manage(env, "seed_load", "--phase", PHASE, "--submissions", str(args.submissions), "--teams",
                    str(args.teams))
    seed_seconds = time.perf_counter() - started

    base = f"http://127.0.0.1:{args.port}"
    gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "leaderboard.wsgi", "-w", str(args.workers),
                                 "--worker-class", args.worker_class, "-b", f"127.0.0.1:{args.port}",
                                 "--log-level", "warning",
                                 "--error-logfile", str(var / "gunicorn.log")], cwd=ROOT, env=env)
    stop, log = var / "stop", var / "scorer.jsonl"
    scorer_env = {**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}
    scoring = None
    try:
        phase_id = phase_pk(args)
        board_url = f"{base}/api/v1/phases/{phase_id}/leaderboard/"
        wait_for(board_url)
        scoring = subprocess.Popen([sys.executable, __file__, "--scorer", str(args.score_every), str(log), str(stop)],
                                   cwd=ROOT, env=scorer_env)
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().strip()):  # the first scoring is in: the board moves
            if scoring.poll() is not None or time.monotonic() > deadline:
                sys.exit("the scorer did not score its first submission")
            time.sleep(0.5)
        for url in (board_url, base + PAGE):  # each worker warms up (imports, connections)
            for _ in range(2 * args.workers):
                urllib.request.urlopen(url, timeout=30).read()
        def measured(run: Callable[[], dict[str, float]]) -> dict[str, float]:
            """The run's figures, with the web workers' CPU time per request and the load average after it."""
            before = cpu_seconds(gunicorn.pid)
            figures = run()
            figures["cpu_ms"] = (cpu_seconds(gunicorn.pid) - before) * 1000 / max(1, figures["requests"])
            figures["load"] = os.getloadavg()[0]
            return figures

        results = [("JSON board, closed loop (wrk, 50 connections)", ">= 500 requests/s",
                    measured(lambda: run_wrk(board_url, args.seconds))),
                   (f"JSON board, paced {args.rate}/s (even)", "p99 <= 50 ms, 0 errors",
                    measured(lambda: run_paced(board_url, args.seconds, args.rate))),
                   (f"HTML page, paced {args.rate}/s (even)", "p99 <= 150 ms, 0 errors",
                    measured(lambda: run_paced(base + PAGE, args.seconds, args.rate))),
                   (f"JSON board, hey -c 50 -q {args.rate / 50:g} (bursts)", "(for comparison)",
                    measured(lambda: run_hey(board_url, args.seconds, args.rate))),
                   (f"HTML page, hey -c 50 -q {args.rate / 50:g} (bursts)", "(for comparison)",
                    measured(lambda: run_hey(base + PAGE, args.seconds, args.rate)))]
        load_during = os.getloadavg()
    finally:
        stop.touch()
        if scoring is not None:
            scoring.wait(timeout=120)
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=60)
        empty_redis(args)
    scored = [json.loads(line) for line in log.read_text().splitlines()]
    report(args, seeded, seed_seconds, scored, results, load_before, load_during)
    shutil.rmtree(var, ignore_errors=True)
    errors = sum(r["errors"] for _, _, r in results)
    if errors:  # a failed answer is a defect, whatever the machine's speed; the targets are for reading
        sys.exit(f"{errors} requests failed")


def report(args: argparse.Namespace, seeded: str, seed_seconds: float, scored: list[dict], results: list,
           load_before: tuple, load_during: tuple) -> None:
    refresh = sorted(s["refresh"] for s in scored)
    print(f"\n{seeded} ({seed_seconds:.1f} s with start-up)")
    print(f"gunicorn {args.workers} {args.worker_class} workers, PostgreSQL {args.db}, Redis cache db {args.cache_db}; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {load_during[0]:.2f} at the end")
    print(f"meanwhile {len(scored)} submissions scored (one every {args.score_every:g} s), each rebuilding the "
          f"boards: rebuild median {refresh[len(refresh) // 2]:.2f} s, max {refresh[-1]:.2f} s; board version "
          f"{scored[0]['version']} -> {scored[-1]['version']}\n")
    print(f"{'measurement':<48} {'offered/s':>9} {'served/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'web CPU':>8} {'load':>5}  target")
    for name, target, r in results:
        offered = f"{r['offered']}" if r["offered"] else "-"
        print(f"{name:<48} {offered:>9} {r['rate']:>9.1f} {r['p50'] * 1000:>8.1f} {r['p99'] * 1000:>8.1f} "
              f"{r['errors']:>7} {r['cpu_ms']:>5.2f} ms {r['load']:>5.2f}  {target}")
    print("\nweb CPU: the gunicorn workers' CPU time per request served (what 2 idle cores divide into); load: the\n"
          "machine's 1-minute load average after the measurement (other work on it slows every figure above).")


if __name__ == "__main__":
    main()
