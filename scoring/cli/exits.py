"""What can end an `egomask` command, and the exit code each ending gets: the one definition of both.

Every command, local or server, ends by returning an ExitCode or by raising one of these errors;
`scoring.cli.main` turns an error into one line on stderr ("egomask: error: ...") and its code.
This module imports nothing heavy, so the parser and the local commands can use it freely.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class ExitCode(enum.IntEnum):
    """The exit status of `egomask`, the same for every command (the README lists them too)."""

    OK = 0
    #: `validate` or `submit` found problems in the submission, the server refused the request
    #: (its sentence is printed), the submission failed or was cancelled, or `verify` found that a
    #: receipt's signature (or the file given) does not match.
    PROBLEMS = 1
    #: Bad arguments, broken ground truth, a submission `eval` cannot score, an unreadable file
    #: (a receipt or key `verify` cannot read), not logged in.
    INVALID = 2
    #: The server cannot be reached or failed (5xx), after retries.
    UNREACHABLE = 3
    #: `--wait --timeout` ran out before scoring ended (the submission goes on).
    TIMEOUT = 4
    #: Ctrl-C; an interrupted upload is aborted on the server first.
    INTERRUPTED = 130


class CommandError(Exception):
    """A command cannot go on: `line()` is printed after "egomask: error: ", then it exits with `code`."""

    default_code = ExitCode.INVALID

    def __init__(self, message: str, code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._code = code

    @property
    def code(self) -> ExitCode:
        """The exit status this error ends the command with."""
        return self._code if self._code is not None else self.default_code

    def line(self) -> str:
        """The sentence for the person at the terminal."""
        return self.message


class ConfigError(CommandError):
    """No usable server or token: the user must log in or set the environment (exit 2)."""


class RemoteError(CommandError):
    """The server refused the request: its status, its sentence and its detail.

    Exit 3 when it is the server's fault (5xx, or no answer at all), else exit 1.
    """

    def __init__(self, status: int, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail: dict[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return self.message

    @property
    def is_server_fault(self) -> bool:
        """Not the request's fault (5xx, or no server at all): trying again later may work."""
        return self.status == 0 or self.status >= 500

    @property
    def code(self) -> ExitCode:
        return ExitCode.UNREACHABLE if self.is_server_fault else ExitCode.PROBLEMS

    def line(self) -> str:
        if self.status == 401:  # a missing, revoked or mistyped token: the fix is the same
            return f"{self.message} Run `egomask login` (or set EGOMASK_TOKEN)."
        return self.message


class Unreachable(RemoteError):
    """No answer at all: the server is down, the address is wrong, or the network failed."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)
