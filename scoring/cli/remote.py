"""The server commands of `egomask`, as options: talk to a leaderboard server.

    egomask login [--server URL]               save the server and an API token (mode 0600)
    egomask challenges                         the challenges and their phases
    egomask phases CHALLENGE                   one challenge's phases: dates, splits, quota left
    egomask submit FILE --phase ID [--wait]    check the zip here, upload it, optionally follow the scoring
    egomask status ID [--wait]                 a submission's status, scores or problems
    egomask leaderboard PHASE [--split S]      a phase's public board
    egomask receipt ID [-o FILE]               download a submission's signed score receipt

Every command takes --json (one JSON object or list on stdout, for scripts); human output is
tables. Progress bars, spinners, warnings and errors go to stderr, so `submit`'s first line on
stdout is always `Submission <id> ...`. EGOMASK_SERVER and EGOMASK_TOKEN override the saved login.
A phase is named by its id or as CHALLENGE/PHASE (slugs). Exit codes: scoring/cli/exits.py.

This module only builds the parser; the commands themselves (scoring/cli/commands.py) are imported
when one runs, so the local scoring commands never load requests or rich, which are slow to load.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..evaluation import OVERALL
from ..groundtruth import SPLITS

SCORE_ROWS = (*SPLITS, OVERALL)  # the rows of a submission's scores and the boards of a phase

MiB = 2**20
MIN_PART = 5 * MiB  # S3's smallest part (every part but the last)
DEFAULT_PART = 16 * MiB
MAX_PART = 1024 * MiB  # each part is held in memory while it is sent


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    """The command `name` of scoring/cli/commands.py, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        from . import commands

        return int(getattr(commands, name)(args))

    return run


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
    p.set_defaults(run=_lazy("cmd_login"))

    p = commands.add_parser("challenges", help="list the server's challenges and their phases")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=_lazy("cmd_challenges"))

    p = commands.add_parser("phases", help="list a challenge's phases (dates, splits, quota left)")
    p.add_argument("challenge", help="the challenge's slug or id")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=_lazy("cmd_phases"))

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
    p.set_defaults(run=_lazy("cmd_submit"))

    p = commands.add_parser("status", help="a submission's status, scores or problems")
    p.add_argument("id", type=int, help="the submission's id")
    _wait_options(p)
    p.set_defaults(run=_lazy("cmd_status"))

    p = commands.add_parser("leaderboard", help="a phase's leaderboard")
    p.add_argument("phase", help="the phase: its id, or CHALLENGE/PHASE")
    p.add_argument("--split", choices=SCORE_ROWS, help="which board (default: the server's, overall)")
    p.add_argument("--json", action="store_true", help="print the board as one JSON object")
    p.set_defaults(run=_lazy("cmd_leaderboard"))

    p = commands.add_parser("receipt", help="download a submission's signed score receipt (check it: egomask verify)")
    p.add_argument("id", type=int, help="the submission's id")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: egomask-receipt-<id>.json)")
    p.add_argument("--json", action="store_true", help="print the receipt on stdout instead of writing a file")
    p.set_defaults(run=_lazy("cmd_receipt"))


__all__ = ["register"]
