"""`egomask`: score, check and synthesize EgoMask submissions, and submit them to a leaderboard server.

Local commands (scoring/cli/local.py): eval, validate, synth, synth-predict; run-baseline
(scoring/cli/baselines.py) runs a reference model runner; verify (scoring/cli/verify.py) checks a
score receipt offline. Server commands (options in scoring/cli/remote.py, code in
scoring/cli/commands.py): login, challenges, phases, submit, status, leaderboard, receipt.

Exit codes, the same for every command (scoring/cli/exits.py):
  0    success
  1    problems: `validate` or `submit` found problems in the submission, the server refused the
       request (its sentence is printed), the submission failed or was cancelled, or `verify`
       found that a receipt's signature (or the file given) does not match
  2    invalid input: bad arguments, broken ground truth, a submission `eval` cannot score, an
       unreadable file (or receipt, or key), not logged in
  3    the server cannot be reached or failed (5xx), after retries
  4    `--wait --timeout` ran out before scoring ended (the submission goes on)
  130  interrupted (Ctrl-C); an interrupted upload is aborted on the server first
A failure ends with one line on stderr that starts with "egomask: error:".

The scoring core never imports this package; this package loads requests and rich only when a
server command runs.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ..errors import InvalidGroundTruth, InvalidSubmission
from ..evaluation import SCORER_VERSION
from . import baselines, local, remote, verify
from .exits import CommandError, ExitCode

__all__ = ["build_parser", "main", "version"]


def version() -> str:
    """The installed distribution's version; in a source checkout without an install, pyproject.toml's."""
    try:
        return metadata.version("egomask")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        return f"{tomllib.loads(pyproject.read_text())['project']['version']} (source checkout)"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: local commands, then server commands."""
    parser = argparse.ArgumentParser(prog="egomask", description="EgoMask scoring and submission tool.")
    parser.add_argument("--version", action="version", version=f"egomask {version()} (scorer {SCORER_VERSION})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local.register(commands)
    baselines.register(commands)
    verify.register(commands)
    remote.register(commands)
    return parser


def _network_error(exc: OSError) -> bool:
    """An error of requests that escaped the client (which turns its own into Unreachable)."""
    # requests is loaded only by the server commands; when it is not loaded, nothing can be one of its errors.
    requests = sys.modules.get("requests")
    return requests is not None and isinstance(exc, requests.RequestException)


def _fail(message: str, code: ExitCode) -> int:
    print(f"egomask: error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code. Every failure of every command ends here, as one line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as exc:
        return _fail(exc.line(), exc.code)
    except InvalidGroundTruth as exc:
        return _fail(f"invalid ground truth: {exc}", ExitCode.INVALID)
    except InvalidSubmission as exc:
        return _fail(f"invalid submission: {exc.summary()}", ExitCode.INVALID)
    except OSError as exc:
        if _network_error(exc):
            return _fail(f"cannot reach the server: {exc}", ExitCode.UNREACHABLE)
        return _fail(str(exc), ExitCode.INVALID)
    except KeyboardInterrupt:
        print("egomask: interrupted", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
