"""Output of the server commands: consoles (stdout for results, stderr for people), tables, JSON."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..metrics import METRICS
from .client import Json
from .exits import ExitCode
from .remote import SCORE_ROWS

# Names and titles are typed by users: never read them as rich markup or :emoji: codes.
_PLAIN = {"highlight": False, "markup": False, "emoji": False}


def stdout_console() -> Console:
    """The console for results (tables), as wide as needed when stdout is not a terminal."""
    console = Console(**_PLAIN)
    if not console.is_terminal:  # a pipe or a file: never cut a table to 80 columns
        console = Console(width=200, **_PLAIN)
    return console


def stderr_console() -> Console:
    """The console for progress bars and spinners."""
    return Console(stderr=True, **_PLAIN)


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def print_json(value: object) -> None:
    """One JSON document on one line of stdout (--json)."""
    print(json.dumps(value, indent=None, sort_keys=False), flush=True)


def moment(value: str | None) -> dt.datetime | None:
    """An ISO 8601 time from the server, in UTC; None for none or one that cannot be read."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def when(value: str | None) -> str:
    """An ISO 8601 time from the server as "YYYY-MM-DD HH:MM UTC"; "—" for none."""
    if not value:
        return "—"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC)
    return parsed.strftime("%Y-%m-%d %H:%M UTC" if parsed.tzinfo else "%Y-%m-%d %H:%M")


def number(value: object) -> str:
    """A score with two decimals; "—" for a missing one."""
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def problem_line(problem: object) -> str:
    """A problem or warning from the server ({"message", "location"}) as one readable line."""
    if isinstance(problem, Mapping):
        where = ", ".join(f"{k} {v}" if k != "file" else str(v) for k, v in (problem.get("location") or {}).items())
        message = str(problem.get("message", problem))
        return f"{where}: {message}" if where else message
    return str(problem)


def score_table(scores: Mapping[str, Any]) -> Table:
    """One row per split (short, medium, long, overall first), one column per metric."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("split")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    names = [s for s in SCORE_ROWS if s in scores] + [s for s in scores if s not in SCORE_ROWS]
    for name in names:
        row = scores[name] or {}
        table.add_row(name, *(number(row.get(metric)) for metric in METRICS))
    return table


def report(submission: Json, console: Console) -> None:
    """Everything a person wants to know about a submission, on stdout."""
    status = submission.get("status", "?")
    console.print(f"Submission {submission.get('id')}: {status}")
    if submission.get("status_note"):  # e.g. retrying after a worker stopped
        console.print(f"  {submission['status_note']}")
    facts = [f"phase {submission.get('phase')}"]
    team = submission.get("team_name") or submission.get("team")  # the API sends the id and the name
    if team:
        facts.append(f"team {team}")
    if submission.get("method_name"):
        facts.append(f"method {submission['method_name']}")
    if (submission.get("attempt") or 1) > 1:
        facts.append(f"attempt {submission['attempt']}")
    console.print("  " + " · ".join(facts))
    times = f"  submitted {when(submission.get('submitted_at'))}"
    if submission.get("finished_at"):
        times += f" · finished {when(submission['finished_at'])}"
    console.print(times)
    if status in ("failed", "cancelled"):
        if submission.get("failure_message"):
            console.print(f"  {submission['failure_message']}")
        for problem in submission.get("problems") or []:
            console.print(f"  - {problem_line(problem)}")
    if submission.get("scores"):
        console.print(score_table(submission["scores"]))
    if submission.get("ladder"):  # the phase runs the Ladder: the scores are the team's Ladder score
        console.print(submission["ladder"])
    for warning in submission.get("warnings") or []:
        console.print(f"warning: {problem_line(warning)}")


def exit_for(submission: Json) -> ExitCode:
    """Exit 1 for a submission that failed or was cancelled, else 0."""
    return ExitCode.PROBLEMS if submission.get("status") in ("failed", "cancelled") else ExitCode.OK

