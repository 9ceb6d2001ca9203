"""Sending a predictions zip to the server: one request, or a large upload in parts with a progress bar.

An upload that is interrupted (Ctrl-C) or fails halfway is aborted on the server, so nothing
half-made is left and no quota is used.

Test hook: EGOMASK_TEST_PART_DELAY=<seconds> pauses before each part after the first, so a test
can interrupt a large upload halfway.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .client import Client, Json, MethodFields, UploadTicket, parts_of, upload_in_parts
from .exits import CommandError, ExitCode, RemoteError
from .output import stderr_console


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


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=stderr_console(), disable=not enabled)


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


def upload(client: Client, phase_id: int, path: Path, method: MethodFields, *, large: bool, part_size: int,
           show_progress: bool) -> Json:
    """Send the file to the phase, in one request or in parts; the submission it became.

    Ctrl-C or a failure halfway through a large upload aborts it on the server, so nothing
    half-made is left; the progress bar (stderr) shows exactly the file's bytes.
    """
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
                raise CommandError("interrupted before the server answered: either the upload never arrived, or it "
                                   "arrived whole (then it shows in `egomask status` / on the website); nothing "
                                   "half-made is left", ExitCode.INTERRUPTED) from None
        ticket = client.upload_start(phase_id, filename=path.name, size=size, parts=parts_of(size, part_size),
                                     method=method)
        try:
            sha256, etags = upload_in_parts(client, ticket, path, part_size, advance, _part_delay())
            progress.update(task, description=f"Verifying {path.name}")
            return client.upload_complete(ticket, sha256=sha256, etags=etags, method=method)
        except KeyboardInterrupt:
            progress.stop()
            raise CommandError(f"interrupted: {_abort(client, ticket)}", ExitCode.INTERRUPTED) from None
        except (RemoteError, OSError):
            # A part that failed leaves the others on the server; a refused completion was discarded by the
            # server already (the abort then answers 409, which is fine).
            _abort(client, ticket)
            raise
