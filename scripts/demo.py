#!/usr/bin/env python
"""Run the demo: the web server and a Celery worker (with beat) as child processes of this one.

`make demo` migrates and runs `manage.py seed_demo` first, then this. With no environment set, both
children use the embedded defaults (SQLite and kombu's filesystem transport under ./var).

Ctrl-C or SIGTERM stops both children (SIGTERM: the worker finishes its task first) and exits 0. If
either child exits on its own, the other is stopped and this exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 20  # then SIGKILL: a worker finishing a long scoring task is cut short


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this launcher is killed outright (SIGKILL) and cannot clean up."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start(argv: list[str]) -> subprocess.Popen:
    # Own process group: a terminal's Ctrl-C reaches this launcher only, which stops the children in order.
    return subprocess.Popen(argv, cwd=ROOT, process_group=0, preexec_fn=_die_with_parent)


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(children: dict[str, subprocess.Popen], signals: list[int]) -> None:
    """SIGTERM each running child, wait, then SIGKILL whatever is left of their process groups."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    received = len(signals)
    while time.monotonic() < deadline and len(signals) == received:  # a second Ctrl-C: stop waiting
        if all(proc.poll() is not None for proc in children.values()):
            break
        time.sleep(0.1)
    for name, proc in children.items():
        if proc.poll() is None:
            print(f"demo: {name} did not stop in time; killing it", flush=True)
        if _group_alive(proc.pid):  # the child, or what it left behind (pool processes, beat)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    args = parser.parse_args(argv)

    signals: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background with SIGINT ignored
        signal.signal(signum, lambda number, frame: signals.append(number))

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")
    # Links in the mails the worker sends (no request to take the address from) point at this server.
    os.environ.setdefault("SITE_URL", f"http://{args.host}:{args.port}")
    import django

    django.setup()
    from django.conf import settings

    from leaderboard.submissions.management.commands.seed_demo import DEMO_LOGINS

    if _listening(args.host, args.port):
        print(f"demo: something is already listening on {args.host}:{args.port}; stop it or use PORT=...",
              file=sys.stderr)
        return 1
    python = sys.executable
    children = {
        "web": _start([python, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"]),
        "worker": _start([python, "-m", "celery", "-A", "leaderboard", "worker", "-Q", "maintenance,scoring,gpu", "-c", "2",
                          "-B", "--loglevel", "INFO", "-s", str(Path(settings.VAR_DIR) / "celerybeat-schedule")]),
    }
    url = f"http://{args.host}:{args.port}/"
    code, announced = 0, False
    while not signals:
        dead = [(name, proc.returncode) for name, proc in children.items() if proc.poll() is not None]
        if dead:
            name, returncode = dead[0]
            print(f"demo: the {name} process exited ({returncode}); stopping the rest", file=sys.stderr, flush=True)
            code = returncode if returncode and returncode > 0 else 1
            break
        if not announced and _listening(args.host, args.port):
            announced = True
            database = settings.DATABASES["default"]
            print(f"\nEgoMask demo: {url}   (admin: {url}admin/)", flush=True)
            print(f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}; "
                  f"broker: {settings.CELERY_BROKER_URL.split('@')[-1]}", flush=True)
            for username, password in DEMO_LOGINS:
                print(f"username: {username}  password: {password}", flush=True)
            if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
                print(f"mail (sign-up verification, password reset, notifications): one file per message in "
                      f"{settings.EMAIL_FILE_PATH}/", flush=True)
            print("Ctrl-C stops the web server and the worker.\n", flush=True)
        time.sleep(0.2)
    if signals:
        print(f"\ndemo: {signal.Signals(signals[0]).name}: stopping the web server and the worker", flush=True)
    _stop(children, signals)
    print("demo: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
