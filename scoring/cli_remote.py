"""The participant's commands of `egomask`: talk to a leaderboard server.

    egomask login [--server URL]               save the server and an API token (mode 0600)
    egomask challenges                         the challenges and their phases
    egomask phases CHALLENGE                   one challenge's phases: dates, splits, quota left
    egomask submit FILE --phase ID [--wait]    check the zip here, upload it, optionally follow the scoring
    egomask status ID [--wait]                 a submission's status, scores or problems
    egomask leaderboard PHASE [--split S]      a phase's public board

Every command takes --json (one JSON object or list on stdout, for scripts); human output is
tables. Progress bars, spinners, warnings and errors go to stderr, so `submit`'s first line on
stdout is always `Submission <id> ...`. EGOMASK_SERVER and EGOMASK_TOKEN override the saved login.
A phase is named by its id or as CHALLENGE/PHASE (slugs).

Exit codes: 0 success; 1 the submission has problems (found here before uploading, or by the
scorer), the server refused the request (its sentence is printed), or the submission failed or was
cancelled; 2 invalid input (bad arguments, unreadable file, not logged in); 3 the server cannot be
reached or failed (5xx), after retries; 4 `--wait --timeout` ran out before scoring ended; 130
interrupted (Ctrl-C; an interrupted upload is aborted on the server first).

Test hook: EGOMASK_TEST_PART_DELAY=<seconds> pauses before each part after the first, so a test
can interrupt a large upload halfway.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import getpass
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from rich import box
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from .evaluation import validate_submission
from .groundtruth import SPLITS
from .metrics import METRICS
from .remote import (
    DEFAULT_PART,
    MAX_PART,
    MIN_PART,
    Client,
    Config,
    ConfigError,
    Json,
    MethodFields,
    MiB,
    RemoteError,
    UploadTicket,
    load_config,
    normalize_server,
    parts_of,
    save_config,
    upload_in_parts,
)

EXIT_OK, EXIT_PROBLEMS, EXIT_INVALID, EXIT_UNREACHABLE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
TERMINAL = ("finished", "failed", "cancelled")
SCORE_ROWS = (*SPLITS, "overall")
POLL_FIRST, POLL_MAX = 1.0, 10.0  # seconds between status checks, growing by half each time


class _Refused(Exception):
    """A problem found here (not by the server): one line on stderr, then exit with `code`."""

    def __init__(self, message: str, code: int = EXIT_PROBLEMS) -> None:
        super().__init__(message)
        self.code = code


class _TimedOut(Exception):
    def __init__(self, submission: Json) -> None:
        super().__init__(submission.get("status"))
        self.submission = submission


# --- output -----------------------------------------------------------------------------------


# Names and titles are typed by users: never read them as rich markup or :emoji: codes.
_PLAIN = {"highlight": False, "markup": False, "emoji": False}


def _stdout() -> Console:
    console = Console(**_PLAIN)
    if not console.is_terminal:  # a pipe or a file: never cut a table to 80 columns
        console = Console(width=200, **_PLAIN)
    return console


def _stderr() -> Console:
    return Console(stderr=True, **_PLAIN)


def _say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=None, sort_keys=False), flush=True)


def _when(value: str | None) -> str:
    if not value:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC" if moment.tzinfo else "%Y-%m-%d %H:%M")


def _number(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def _problem_line(problem: object) -> str:
    """A problem or warning from the server ({"message", "location"}) as one readable line."""
    if isinstance(problem, Mapping):
        where = ", ".join(f"{k} {v}" if k != "file" else str(v) for k, v in (problem.get("location") or {}).items())
        message = str(problem.get("message", problem))
        return f"{where}: {message}" if where else message
    return str(problem)


def _score_table(scores: Mapping[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("split")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    names = [s for s in SCORE_ROWS if s in scores] + [s for s in scores if s not in SCORE_ROWS]
    for name in names:
        row = scores[name] or {}
        table.add_row(name, *(_number(row.get(metric)) for metric in METRICS))
    return table


def _report(submission: Json, console: Console) -> None:
    """Everything a person wants to know about a submission, on stdout."""
    status = submission.get("status", "?")
    console.print(f"Submission {submission.get('id')}: {status}")
    facts = [f"phase {submission.get('phase')}"]
    team = submission.get("team_name") or submission.get("team")  # the API sends the id and the name
    if team:
        facts.append(f"team {team}")
    if submission.get("method_name"):
        facts.append(f"method {submission['method_name']}")
    if (submission.get("attempt") or 1) > 1:
        facts.append(f"attempt {submission['attempt']}")
    console.print("  " + " · ".join(facts))
    times = f"  submitted {_when(submission.get('submitted_at'))}"
    if submission.get("finished_at"):
        times += f" · finished {_when(submission['finished_at'])}"
    console.print(times)
    if status in ("failed", "cancelled"):
        if submission.get("failure_message"):
            console.print(f"  {submission['failure_message']}")
        for problem in submission.get("problems") or []:
            console.print(f"  - {_problem_line(problem)}")
    if submission.get("scores"):
        console.print(_score_table(submission["scores"]))
    for warning in submission.get("warnings") or []:
        console.print(f"warning: {_problem_line(warning)}")


def _exit_for(submission: Json) -> int:
    return EXIT_PROBLEMS if submission.get("status") in ("failed", "cancelled") else EXIT_OK


# --- shared plumbing ----------------------------------------------------------------------------


def _command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn what can go wrong into one line on stderr and an exit code."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ConfigError as exc:
            _say(f"egomask: error: {exc}")
            return EXIT_INVALID
        except _Refused as exc:
            _say(f"egomask: error: {exc}")
            return exc.code
        except RemoteError as exc:
            hint = " Run `egomask login` (or set EGOMASK_TOKEN)." if exc.status == 401 else ""
            _say(f"egomask: error: {exc.message}{hint}")
            return EXIT_UNREACHABLE if exc.is_server_fault else EXIT_PROBLEMS
        except requests.RequestException as exc:  # the client wraps these; this is a safety net
            _say(f"egomask: error: cannot reach the server: {exc}")
            return EXIT_UNREACHABLE
        except KeyboardInterrupt:
            _say("egomask: interrupted")
            return EXIT_INTERRUPTED

    return wrapper


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
        raise _Refused(f"name a phase by its id or as CHALLENGE/PHASE, not {name!r}", EXIT_INVALID)
    challenge_slug, phase_slug = name.split("/")
    challenge = _challenge(client, challenge_slug)
    for phase in challenge.get("phases") or []:
        if phase.get("slug") == phase_slug or str(phase.get("id")) == phase_slug:
            return int(phase["id"])
    raise _Refused(f"challenge {challenge_slug} has no phase {phase_slug!r}; `egomask phases {challenge_slug}` "
                   "lists them")


def _challenge(client: Client, name: str) -> Json:
    challenges = client.challenges()
    for challenge in challenges:
        if name in (challenge.get("slug"), str(challenge.get("id"))):
            return challenge
    known = ", ".join(str(c.get("slug")) for c in challenges) or "none"
    raise _Refused(f"no challenge {name!r} on this server (challenges: {known})")


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Let a clean-up call finish even if Ctrl-C is pressed again."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- login --------------------------------------------------------------------------------------


@_command
def cmd_login(args: argparse.Namespace) -> int:
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
            _say(f"note: {name} is set in your environment and overrides the saved login.")
    return EXIT_OK


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


@_command
def cmd_challenges(args: argparse.Namespace) -> int:
    challenges = _client(need_token=False).challenges()
    if args.json:
        _print_json(challenges)
        return EXIT_OK
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("challenge", "title", "phases (id slug)", "open now"):
        table.add_column(column)
    for challenge in challenges:
        phases = challenge.get("phases") or []
        table.add_row(str(challenge.get("slug")), str(challenge.get("title")),
                      ", ".join(f"{p.get('id')} {p.get('slug')}" for p in phases) or "—",
                      ", ".join(str(p.get("id")) for p in phases if p.get("is_open")) or "—")
    console = _stdout()
    if challenges:
        console.print(table)
    else:
        console.print("No challenges on this server.")
    return EXIT_OK


@_command
def cmd_phases(args: argparse.Namespace) -> int:
    challenge = _challenge(_client(need_token=False), args.challenge)
    phases = challenge.get("phases") or []
    if args.json:
        _print_json(phases)
        return EXIT_OK
    table = Table(title=f"{challenge.get('title')} ({challenge.get('slug')})", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("id", "phase", "name", "status", "starts", "ends", "splits", "board", "ranking",
                   "submissions left"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for phase in phases:
        board = str(phase.get("visibility") or "public")
        if phase.get("reveal_at"):
            board += f" until {_when(phase['reveal_at'])}"
        ranking = f"{phase.get('ranking_rule')} by {phase.get('primary_metric')}"
        splits = ", ".join(str(s.get("code")) for s in phase.get("splits") or []) or "all"
        table.add_row(str(phase.get("id")), str(phase.get("slug")), str(phase.get("name")), _open_text(phase),
                      _when(phase.get("starts_at")), _when(phase.get("ends_at")), splits, board, ranking,
                      _quota_text(phase.get("quota")))
    _stdout().print(table)
    return EXIT_OK


# --- submit -------------------------------------------------------------------------------------


def _validate_here(path: Path) -> None:
    """The server's structural checks, run before anything is sent."""
    report = validate_submission(path)
    for warning in report.warnings:
        _say(f"warning: {warning}")
    if not report.ok:
        for error in report.errors:
            _say(f"error: {error}")
        count = len(report.errors)
        raise _Refused(f"{path} was not uploaded: the server would refuse it ({count} problem{'s' * (count > 1)} "
                       "above). Fix them, then submit again; `egomask validate --pred FILE --gt GT` checks a zip "
                       "against ground truth you have.")


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=_stderr(), disable=not enabled)


def _part_delay() -> Callable[[int], None] | None:
    try:
        delay = float(os.environ.get("EGOMASK_TEST_PART_DELAY") or 0)
    except ValueError:
        return None
    if delay <= 0:
        return None
    return lambda number: time.sleep(delay) if number > 1 else None


def _abort(client: Client, ticket: UploadTicket) -> str:
    """Abort the upload on the server; what to tell the user about it."""
    try:
        with _sigint_ignored():
            client.upload_abort(ticket)
    except RemoteError as exc:
        if exc.status == 409:  # it completed (or was discarded) just before the interruption
            return f"upload {ticket.id}: {exc.message.rstrip('.')}; the website lists your submissions"
        return (f"could not abort upload {ticket.id} ({exc.message}); the server discards unfinished uploads "
                "within a day")
    return f"upload {ticket.id} was aborted; nothing was left on the server"


def _upload(client: Client, phase_id: int, path: Path, method: MethodFields, *, large: bool, part_size: int,
            show_progress: bool) -> Json:
    size = path.stat().st_size
    with _progress(show_progress) as progress:
        task = progress.add_task(f"Uploading {path.name}", total=size)

        def advance(sent: int) -> None:
            progress.advance(task, sent)

        if not (large or size > part_size):
            data = path.read_bytes()
            try:
                return client.submit(phase_id, path.name, data, method, advance)
            except KeyboardInterrupt:
                progress.stop()
                raise _Refused("interrupted before the server answered: either the upload never arrived, or it "
                               "arrived whole (then it shows in `egomask status` / on the website); nothing "
                               "half-made is left", EXIT_INTERRUPTED) from None
        ticket = client.upload_start(phase_id, filename=path.name, size=size, parts=parts_of(size, part_size),
                                     method=method)
        try:
            sha256, etags = upload_in_parts(client, ticket, path, part_size, advance, _part_delay())
            progress.update(task, description=f"Verifying {path.name}")
            return client.upload_complete(ticket, sha256=sha256, etags=etags, method=method)
        except KeyboardInterrupt:
            progress.stop()
            raise _Refused(f"interrupted: {_abort(client, ticket)}", EXIT_INTERRUPTED) from None
        except (RemoteError, OSError):
            # A part that failed leaves the others on the server; a refused completion was discarded by the
            # server already (the abort then answers 409, which is fine).
            _abort(client, ticket)
            raise


def _follow(client: Client, submission_id: int, timeout: float | None, show: bool) -> Json:
    """Poll the submission, less often as time goes by, until scoring ends (or `timeout`)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = POLL_FIRST
    spinner = _stderr().status(f"Submission {submission_id}: waiting for scoring", spinner="dots")
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
                _print_json(exc.submission)
            _say(f"egomask: still {exc.submission.get('status')} after {args.timeout:g} s; "
                 f"follow it with `egomask status {submission_id} --wait`")
            return EXIT_TIMEOUT
        except KeyboardInterrupt:
            _say(f"egomask: stopped following; submission {submission_id} goes on on the server "
                 f"(`egomask status {submission_id}`)")
            return EXIT_INTERRUPTED
    if args.json:
        _print_json(submission)
    elif args.wait or not announced:
        _report(submission, _stdout())
    return _exit_for(submission)


@_command
def cmd_submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.is_dir():
        raise _Refused(f"{path} is a folder: zip the split folders (short, medium, long) and submit the .zip",
                       EXIT_INVALID)
    if not path.is_file():
        raise _Refused(f"no such file: {path}", EXIT_INVALID)
    client = _client()
    _validate_here(path)  # before any request: a zip the server would refuse is never sent
    phase_id = _phase_id(client, args.phase)
    method = MethodFields(method_name=args.method_name or path.stem, method_description=args.method_description,
                          method_url=args.method_url, code_url=args.code_url, is_public=not args.private)
    submission = _upload(client, phase_id, path, method, large=args.large, part_size=args.chunk_size,
                         show_progress=not (args.quiet or args.json))
    if not args.json:
        print(f"Submission {submission['id']} received for phase {submission.get('phase', phase_id)}: "
              f"{submission.get('status')}", flush=True)
        if not args.wait:
            _say(f"Follow it with `egomask status {submission['id']} --wait`.")
    return _finish(client, submission, args, announced=True)


# --- status and leaderboard ---------------------------------------------------------------------


@_command
def cmd_status(args: argparse.Namespace) -> int:
    client = _client()
    return _finish(client, client.submission(args.id), args, announced=False)


@_command
def cmd_leaderboard(args: argparse.Namespace) -> int:
    client = _client(need_token=False)
    board = client.leaderboard(_phase_id(client, args.phase), args.split)
    if args.json:
        _print_json(board)
        return EXIT_OK
    console = _stdout()
    if not board.get("visible", True):
        console.print(board.get("message") or "This leaderboard is not public yet.")
        return EXIT_OK
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
                      *(_number(scores.get(name)) for name in METRICS), _when(row.get("submitted_at")),
                      str(row.get("submission_id") or ""))
    if board.get("rows"):
        console.print(table)
    else:
        console.print(board.get("message") or "No scored submissions yet.")
    return EXIT_OK


# --- the parser ---------------------------------------------------------------------------------


def _part_size(text: str) -> int:
    try:
        mib = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
    size = int(mib * MiB)
    if not MIN_PART <= size <= MAX_PART:
        raise argparse.ArgumentTypeError(f"a part must be {MIN_PART // MiB} to {MAX_PART // MiB} MiB "
                                         "(5 MiB is S3's smallest part)")
    return size


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the timeout must be positive")
    return value


def _wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true", help="follow the scoring until it ends, then print the scores")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="with --wait: give up after this long (exit 4); the submission goes on")
    p.add_argument("--json", action="store_true", help="print the submission as one JSON object")


def register(commands: Any) -> None:
    """Add the server commands to `egomask`'s subcommands (an argparse subparsers object)."""
    p = commands.add_parser("login", help="log in to a leaderboard server and save the token")
    p.add_argument("--server", help="the server's address, e.g. https://egomask.example.org")
    p.add_argument("--username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (for scripts)")
    p.set_defaults(run=cmd_login)

    p = commands.add_parser("challenges", help="list the server's challenges and their phases")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=cmd_challenges)

    p = commands.add_parser("phases", help="list a challenge's phases (dates, splits, quota left)")
    p.add_argument("challenge", help="the challenge's slug or id")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=cmd_phases)

    p = commands.add_parser("submit", help="check a predictions zip here, then upload it to a phase")
    p.add_argument("file", help="the predictions .zip")
    p.add_argument("--phase", required=True, help="the phase: its id, or CHALLENGE/PHASE")
    p.add_argument("--method-name", help="shown on the leaderboard (default: the file's name)")
    p.add_argument("--method-description", default="")
    p.add_argument("--method-url", default="", help="paper or project page")
    p.add_argument("--code-url", default="")
    p.add_argument("--private", action="store_true", help="keep this submission off the public leaderboard")
    p.add_argument("--large", action="store_true", help="upload in parts even if the file is small")
    p.add_argument("--chunk-size", type=_part_size, default=DEFAULT_PART, metavar="MIB",
                   help=f"part size in MiB (default {DEFAULT_PART // MiB}); larger files are sent in parts")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _wait_options(p)
    p.set_defaults(run=cmd_submit)

    p = commands.add_parser("status", help="a submission's status, scores or problems")
    p.add_argument("id", type=int, help="the submission's id")
    _wait_options(p)
    p.set_defaults(run=cmd_status)

    p = commands.add_parser("leaderboard", help="a phase's leaderboard")
    p.add_argument("phase", help="the phase: its id, or CHALLENGE/PHASE")
    p.add_argument("--split", choices=SCORE_ROWS, help="which board (default: the server's, overall)")
    p.add_argument("--json", action="store_true", help="print the board as one JSON object")
    p.set_defaults(run=cmd_leaderboard)


__all__ = ["EXIT_INTERRUPTED", "EXIT_TIMEOUT", "EXIT_UNREACHABLE", "register"]
