"""The server commands' implementations (their options: scoring/cli/remote.py).

Imported only when a server command runs, so the local scoring commands never load requests or rich.
A command returns its exit code or raises a CommandError (scoring/cli/exits.py); `scoring.cli.main`
prints the error's sentence and exits with its code.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from rich import box
from rich.table import Table

from ..evaluation import validate_submission
from ..metrics import METRICS
from .client import Client, Json, MethodFields
from .config import Config, load_config, normalize_server, save_config
from .exits import CommandError, ConfigError, ExitCode, RemoteError
from .output import exit_for, moment, number, print_json, report, say, stderr_console, stdout_console, when
from .upload import upload

TERMINAL = ("finished", "failed", "cancelled")
POLL_FIRST, POLL_MAX = 1.0, 10.0  # seconds between status checks, growing by half each time


class _TimedOut(Exception):
    def __init__(self, submission: Json) -> None:
        super().__init__(submission.get("status"))
        self.submission = submission


# --- shared plumbing ----------------------------------------------------------------------------


def _client(*, need_token: bool = True) -> Client:
    config = load_config()
    if not config.server:
        raise ConfigError("no server: run `egomask login --server URL` (or set EGOMASK_SERVER)")
    if need_token and not config.token:
        raise ConfigError(f"not logged in to {config.server}: run `egomask login` (or set EGOMASK_TOKEN)")
    return Client(config.server, config.token)


def _phase_id(client: Client, name: str) -> int:
    """A phase by id ("3") or by slugs ("egomask/test")."""
    if name.isdigit():
        return int(name)
    if name.count("/") != 1:
        raise CommandError(f"name a phase by its id or as CHALLENGE/PHASE, not {name!r}", ExitCode.INVALID)
    challenge_slug, phase_slug = name.split("/")
    challenge = _challenge(client, challenge_slug)
    for phase in challenge.get("phases") or []:
        if phase.get("slug") == phase_slug or str(phase.get("id")) == phase_slug:
            return int(phase["id"])
    raise CommandError(f"challenge {challenge_slug} has no phase {phase_slug!r}; `egomask phases {challenge_slug}` "
                       "lists them", ExitCode.PROBLEMS)


@contextlib.contextmanager
def _known_phase(phase_id: int) -> Iterator[None]:
    """Turn the server's "no such phase" into a command the participant can run to find one."""
    try:
        yield
    except RemoteError as exc:
        if exc.status != 404:
            raise
        raise CommandError(f"there is no phase {phase_id} on this server; `egomask challenges` lists the phases",
                           ExitCode.PROBLEMS) from None


def _challenge(client: Client, name: str) -> Json:
    challenges = client.challenges()
    for challenge in challenges:
        if name in (challenge.get("slug"), str(challenge.get("id"))):
            return challenge
    known = ", ".join(str(c.get("slug")) for c in challenges) or "none"
    raise CommandError(f"no challenge {name!r} on this server (challenges: {known})", ExitCode.PROBLEMS)


# --- login --------------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace) -> int:
    """Exchange a username and password for a token and save both server and token (mode 0600)."""
    saved = load_config()
    server = normalize_server(args.server) if args.server else saved.server
    if not server:
        raise ConfigError("which server? run `egomask login --server https://...` (or set EGOMASK_SERVER)")
    username = args.username
    if args.password_stdin:
        if not username:
            raise ConfigError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not username:
            print("Username: ", end="", file=sys.stderr, flush=True)
            username = sys.stdin.readline().strip()
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise ConfigError("a username and a password are needed")
    token = Client(server).obtain_token(username, password)
    path = save_config(Config(server=server, token=token, username=username))
    print(f"Logged in to {server} as {username}; the token is saved in {path} (readable by you only).")
    for name in ("EGOMASK_SERVER", "EGOMASK_TOKEN"):
        if os.environ.get(name) and not (name == "EGOMASK_SERVER" and os.environ[name].rstrip("/") == server):
            say(f"note: {name} is set in your environment and overrides the saved login.")
    return ExitCode.OK


# --- challenges and phases ----------------------------------------------------------------------


def _open_text(phase: Json) -> str:
    if phase.get("is_open"):
        return "open"
    return "closed" if phase.get("accepts_submissions", True) else "closed (not accepting)"


def _quota_text(quota: Json | None) -> str:
    if quota is None:  # the caller has no team in this challenge (or is not logged in)
        return "—"
    parts = []
    if quota.get("per_day") is not None:
        parts.append(f"{quota.get('per_day_left')}/{quota['per_day']} today")
    if quota.get("total") is not None:
        parts.append(f"{quota.get('total_left')}/{quota['total']} in all")
    return ", ".join(parts) or "no limit"


def cmd_challenges(args: argparse.Namespace) -> int:
    """The server's challenges and their phases, as a table or JSON."""
    challenges = _client(need_token=False).challenges()
    if args.json:
        print_json(challenges)
        return ExitCode.OK
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("challenge", "title", "phases (id slug)", "open now"):
        table.add_column(column)
    for challenge in challenges:
        phases = challenge.get("phases") or []
        table.add_row(str(challenge.get("slug")), str(challenge.get("title")),
                      ", ".join(f"{p.get('id')} {p.get('slug')}" for p in phases) or "—",
                      ", ".join(str(p.get("id")) for p in phases if p.get("is_open")) or "—")
    console = stdout_console()
    if challenges:
        console.print(table)
    else:
        console.print("No challenges on this server.")
    return ExitCode.OK


def cmd_phases(args: argparse.Namespace) -> int:
    """One challenge's phases: status, dates, splits, board, ranking, and the submissions left."""
    challenge = _challenge(_client(need_token=False), args.challenge)
    phases = challenge.get("phases") or []
    if args.json:
        print_json(phases)
        return ExitCode.OK
    table = Table(title=f"{challenge.get('title')} ({challenge.get('slug')})", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("id", "phase", "name", "status", "starts", "ends", "splits", "board", "ranking",
                   "submissions left"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for phase in phases:
        board = str(phase.get("visibility") or "public")
        if phase.get("reveal_at"):
            board += f" until {when(phase['reveal_at'])}"
        ranking = f"{phase.get('ranking_rule')} by {phase.get('primary_metric')}"
        splits = ", ".join(str(s.get("code")) for s in phase.get("splits") or []) or "all"
        table.add_row(str(phase.get("id")), str(phase.get("slug")), str(phase.get("name")), _open_text(phase),
                      when(phase.get("starts_at")), when(phase.get("ends_at")), splits, board, ranking,
                      _quota_text(phase.get("quota")))
    stdout_console().print(table)
    return ExitCode.OK


# --- submit -------------------------------------------------------------------------------------


def _validate_here(path: Path) -> None:
    """The server's structural checks, run before anything is sent."""
    report = validate_submission(path)
    for warning in report.warnings:
        say(f"warning: {warning}")
    if not report.ok:
        for error in report.errors:
            say(f"error: {error}")
        count = len(report.errors)
        raise CommandError(f"{path} was not uploaded: the server would refuse it ({count} problem{'s' * (count > 1)} "
                           f"above). Fix them, then submit again; `egomask validate --pred {path}` runs the same "
                           "checks.", ExitCode.PROBLEMS)


def _phase_taking_submissions(client: Client, phase_id: int) -> Json:
    """The phase, if it takes a submission from the caller's team now; else one sentence, exit 1.

    One cheap request before a byte is uploaded, so a closed phase, a missing team or a used quota
    is said at once instead of after the upload. The server checks all of it again on arrival; a
    field it does not send is not held against the upload.
    """
    with _known_phase(phase_id):
        phase = client.phase(phase_id)
    challenge = str(phase.get("challenge") or "")
    name = f"{challenge}/{phase.get('slug')}" if challenge else f"{phase_id}"
    if phase.get("is_open") is False:
        now = dt.datetime.now(dt.UTC)
        starts, ends = moment(phase.get("starts_at")), moment(phase.get("ends_at"))
        if starts is not None and now < starts:
            state = f"opens at {when(phase['starts_at'])}"
        elif ends is not None and ends <= now:
            state = f"closed at {when(phase['ends_at'])}"
        else:
            state = "is not accepting submissions now"
        listing = f"`egomask phases {challenge}`" if challenge else "`egomask challenges`"
        raise CommandError(f"Phase {name} {state}; nothing was uploaded ({listing} shows which phases are open).",
                           ExitCode.PROBLEMS)
    if "quota" in phase and phase["quota"] is None:
        page = f"{client.server}/challenges/{quote(challenge)}/"
        raise CommandError(f"You are not in a team for the challenge {challenge}, so nothing was uploaded; create or "
                           f"join a team on the website: {page}", ExitCode.PROBLEMS)
    if phase.get("refusal"):  # an address to verify, terms to accept: the server's sentence, with where to go
        raise CommandError(str(phase["refusal"]), ExitCode.PROBLEMS)
    quota = phase.get("quota") or {}
    if quota.get("total_left") == 0:
        raise CommandError(f"Your team has used all its submissions for phase {name} ({quota.get('total')} in all); "
                           "nothing was uploaded.", ExitCode.PROBLEMS)
    if quota.get("per_day_left") == 0:
        raise CommandError(f"Your team has used its daily quota of submissions for phase {name} "
                           f"({quota.get('per_day')} a day); nothing was uploaded, and the quota resets at "
                           f"{when(quota.get('resets_at'))}.", ExitCode.PROBLEMS)
    return phase


def _follow(client: Client, submission_id: int, timeout: float | None, show: bool) -> Json:
    """Poll the submission, less often as time goes by, until scoring ends (or `timeout`)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = POLL_FIRST
    spinner = stderr_console().status(f"Submission {submission_id}: waiting for scoring", spinner="dots")
    if show:
        spinner.start()
    try:
        while True:
            submission = client.submission(submission_id)
            status = submission.get("status")
            if status in TERMINAL:
                return submission
            if deadline is not None and time.monotonic() >= deadline:
                raise _TimedOut(submission)
            spinner.update(f"Submission {submission_id}: {status}")
            wait = pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(wait)
            pause = min(pause * 1.5, POLL_MAX)
    finally:
        spinner.stop()


def _finish(client: Client, submission: Json, args: argparse.Namespace, *, announced: bool) -> int:
    """After a submission is known: follow it if asked, then print it and pick the exit code."""
    submission_id = int(submission["id"])
    if args.wait:
        try:
            submission = _follow(client, submission_id, args.timeout, show=not args.json)
        except _TimedOut as exc:
            if args.json:
                print_json(exc.submission)
            say(f"egomask: still {exc.submission.get('status')} after {args.timeout:g} s; "
                 f"follow it with `egomask status {submission_id} --wait`")
            return ExitCode.TIMEOUT
        except KeyboardInterrupt:
            say(f"egomask: stopped following; submission {submission_id} goes on on the server "
                 f"(`egomask status {submission_id}`)")
            return ExitCode.INTERRUPTED
    if args.json:
        print_json(submission)
    elif args.wait or not announced:
        report(submission, stdout_console())
    return exit_for(submission)


def cmd_submit(args: argparse.Namespace) -> int:
    """Check the zip here, check the phase takes it, upload it; optionally follow the scoring (--wait)."""
    path = Path(args.file)
    if path.is_dir():
        raise CommandError(f"{path} is a folder: zip the split folders (short, medium, long) and submit the .zip",
                           ExitCode.INVALID)
    if not path.is_file():
        raise CommandError(f"no such file: {path}", ExitCode.INVALID)
    client = _client()
    _validate_here(path)  # before any request: a zip the server would refuse is never sent
    phase_id = _phase_id(client, args.phase)
    _phase_taking_submissions(client, phase_id)
    method = MethodFields(method_name=args.method_name or path.stem, method_description=args.method_description,
                          method_url=args.method_url, code_url=args.code_url, is_public=not args.private)
    submission = upload(client, phase_id, path, method, large=args.large, part_size=args.chunk_size,
                        show_progress=not (args.quiet or args.json))
    if not args.json:
        print(f"Submission {submission['id']} received for phase {submission.get('phase', phase_id)}: "
              f"{submission.get('status')}", flush=True)
        if not args.wait:
            say(f"Follow it with `egomask status {submission['id']} --wait`.")
    return _finish(client, submission, args, announced=True)


# --- status and leaderboard ---------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    """A submission's status, scores or problems; exit 1 if it failed or was cancelled."""
    client = _client()
    return _finish(client, client.submission(args.id), args, announced=False)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """A phase's board for one split, as a table or JSON."""
    client = _client(need_token=False)
    phase_id = _phase_id(client, args.phase)
    with _known_phase(phase_id):
        board = client.leaderboard(phase_id, args.split)
    if args.json:
        print_json(board)
        return ExitCode.OK
    console = stdout_console()
    if not board.get("visible", True):
        console.print(board.get("message") or "This leaderboard is not public yet.")
        return ExitCode.OK
    metric = board.get("metric")
    table = Table(title=f"Phase {board.get('phase')} · {board.get('split')} · ranked by {metric}",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("rank", justify="right")
    table.add_column("team")
    table.add_column("method")
    for name in METRICS:
        table.add_column(name, justify="right", style="bold" if name == metric else None)
    table.add_column("submitted")
    table.add_column("id", justify="right")
    for row in board.get("rows") or []:
        scores = row.get("scores") or {}
        team = "baseline" if row.get("is_baseline") else str(row.get("team") or "—")
        table.add_row(str(row.get("rank") or "—"), team, str(row.get("method") or ""),
                      *(number(scores.get(name)) for name in METRICS), when(row.get("submitted_at")),
                      str(row.get("submission_id") or ""))
    if board.get("rows"):
        console.print(table)
    else:
        console.print(board.get("message") or "No scored submissions yet.")
    if board.get("ladder"):  # the team rows are the Ladder's scores
        console.print(board["ladder"])
    return ExitCode.OK



# --- receipts -----------------------------------------------------------------------------------


def cmd_receipt(args: argparse.Namespace) -> int:
    """Download a submission's signed receipt to a file (or stdout with --json); check it with `egomask verify`."""
    client = _client(need_token=False)  # a public submission's receipt needs no login
    receipt = client.receipt(args.id)
    if args.json:
        print_json(receipt)
        return ExitCode.OK
    path = Path(args.output or f"egomask-receipt-{args.id}.json")
    try:
        path.write_text(json.dumps(receipt, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}", ExitCode.INVALID) from None
    print(f"Receipt of submission {args.id} written to {path} (signed by key {receipt.get('key_id')}).")
    say(f"Check it offline: `egomask verify {path} --key <the key at {client.server}/.well-known/"
        "egomask-receipt-key.json>`.")
    return ExitCode.OK
