"""A phase's data for its organizers, as files: every submission's metadata and scores (CSV, JSON), the boards
as the organizers see them (CSV, JSON), and a zip of the per-expression results of every finished submission.

Reads only (selectors). Every export is a stream of bytes made as it is read, in constant memory however many
submissions the phase has: submissions are read in batches by id (keyset), their scores with each batch, and
a stored results file is copied into the zip in chunks. The web API (api_exports.py) sends these streams as
they come and the `export_phase` command writes them to files: the same functions, the same rule.

Who may export: the challenge's organizers (permissions.organizer_can ... Can.VIEW); `phase_export` asks,
before anything is read. Scores keep every digit they were stored with (no rounding); no e-mail address is
ever written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from leaderboard.challenges.models import SPLIT_ORDER, Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.challenges.selectors import phase_boards
from leaderboard.errors import NotFound
from leaderboard.lib.spreadsheet import spreadsheet_safe
from scoring import METRICS

from .boards import board_current
from .models import Score, Submission
from .selectors import LeaderboardRow, board_get

BATCH = 500  # submissions read per query
CHUNK = 64 * 1024  # bytes of a stored results file copied at a time

# --- the submissions: metadata and scores ------------------------------------------------------------

_FIELDS = ("id", "team_id", "team__name", "user__username", "method_name", "method_description", "method_url",
           "code_url", "status", "failure_kind", "failure_message", "attempt", "is_baseline", "is_public", "hidden",
           "file_sha256", "file_size", "submitted_at", "started_at", "finished_at", "scoring_seconds",
           "scorer_version", "gt_version")
# Output names of the metadata (the query's names where they are plain already).
_RENAMED = {"team__name": "team", "user__username": "submitter", "file_sha256": "sha256", "file_size": "size"}
SUBMISSION_COLUMNS = [_RENAMED.get(name, name) for name in _FIELDS]
SCORE_VALUES = (*METRICS, "n_expressions")
SCORE_COLUMNS = [f"{split}.{value}" for split in SPLIT_ORDER for value in SCORE_VALUES]


def _number(value: float | None) -> float | None:
    """A stored metric as it is (every digit); NaN, which JSON cannot say, as missing."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def submission_records(*, phase: Phase) -> Iterator[dict[str, Any]]:
    """Every submission of the phase, oldest id first, as a dict of its metadata (SUBMISSION_COLUMNS) and
    `scores` ({split: {metric: value, "n_expressions": n}} for the boards it was scored on). Two queries per
    BATCH submissions, whatever their number."""
    last = 0
    while True:
        rows = list(Submission.objects.filter(phase=phase, pk__gt=last).order_by("pk").values_list(*_FIELDS)[:BATCH])
        if not rows:
            return
        last = rows[-1][0]
        scores: dict[int, dict[str, dict[str, Any]]] = {}
        for submission_id, split, *values in (Score.objects.filter(submission_id__in=[row[0] for row in rows])
                                              .values_list("submission_id", "split", *SCORE_VALUES)):
            scores.setdefault(submission_id, {})[split] = {
                name: _number(value) for name, value in zip(SCORE_VALUES, values, strict=True)}
        for row in rows:
            record = dict(zip(SUBMISSION_COLUMNS, row, strict=True))
            for name in ("submitted_at", "started_at", "finished_at"):
                record[name] = _iso(record[name])
            given = scores.get(record["id"], {})
            record["scores"] = {split: given[split] for split in SPLIT_ORDER if split in given}
            yield record


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return spreadsheet_safe(value)


class _Lines:
    """A csv.writer target that hands back what was written since it was last asked."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer)

    def row(self, values: Iterable[object]) -> bytes:
        self.writer.writerow([_csv_cell(v) for v in values])
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode()


def submissions_csv(*, phase: Phase) -> Iterator[bytes]:
    """One line per submission: SUBMISSION_COLUMNS, then `<split>.<metric>` and `<split>.n_expressions` for
    every split (empty where it has no score). Floats are written with every digit (repr)."""
    lines = _Lines()
    yield lines.row([*SUBMISSION_COLUMNS, *SCORE_COLUMNS])
    for record in submission_records(phase=phase):
        scores = record["scores"]
        yield lines.row([*(record[name] for name in SUBMISSION_COLUMNS),
                         *(scores.get(split, {}).get(value) for split in SPLIT_ORDER for value in SCORE_VALUES)])


def _phase_header(phase: Phase) -> dict[str, Any]:
    return {"challenge": phase.challenge.slug, "phase": {"id": phase.pk, "slug": phase.slug, "name": phase.name},
            "exported_at": _iso(timezone.now())}


def _json_array(head: dict[str, Any], key: str, items: Iterable[Any]) -> Iterator[bytes]:
    """`head` as a JSON object whose last member `key` is the array of `items`, written item by item."""
    opening = json.dumps({**head, key: []}, ensure_ascii=False)
    yield opening[:-2].encode()  # up to and with the "[" of the (empty) array
    for index, item in enumerate(items):
        yield (("," if index else "") + json.dumps(item, ensure_ascii=False, allow_nan=False)).encode()
    yield b"]}"


def submissions_json(*, phase: Phase) -> Iterator[bytes]:
    """{"challenge", "phase", "exported_at", "submissions": [record, ...]} (see submission_records)."""
    yield from _json_array(_phase_header(phase), "submissions", submission_records(phase=phase))


# --- the boards -------------------------------------------------------------------------------------------

BOARD_COLUMNS = ["split", "position", "rank", "team_id", "team", "method", "method_url", "code_url", "is_baseline",
                 "is_reported", "baseline", *METRICS, "n_expressions", "submitted_at", "submission_id"]


def _board_record(split: str, position: int, row: LeaderboardRow) -> dict[str, Any]:
    return {"split": split, "position": position, "rank": row.rank, "team_id": row.team_id, "team": row.team,
            "method": row.method, "method_url": row.method_url, "code_url": row.code_url,
            "is_baseline": row.is_baseline, "is_reported": row.is_reported, "baseline": row.baseline,
            **{m: _number(row.scores.get(m)) for m in METRICS}, "n_expressions": row.n_expressions,
            "submitted_at": _iso(row.submitted_at), "submission_id": row.submission_id}


def board_records(*, phase: Phase, by: AbstractBaseUser) -> Iterator[tuple[str, bool, list[dict[str, Any]]]]:
    """(split, public now, rows) for each board of the phase, as its organizers see it (a private board's rows
    before its reveal too): the materialized rows (BoardRow) with their ranks, reported rows included and
    flagged, in board order by the phase's primary metric. A board is one row per team: held whole."""
    board_current(phase=phase)  # a phase whose boards were never built gets them first, as serving does
    public = phase.is_revealed(timezone.now())
    for split in phase_boards(phase=phase):
        board = board_get(phase=phase, split=split, viewer=by, include_reported=True)
        yield split, public, [_board_record(split, position, row) for position, row in enumerate(board.rows, 1)]


def _baseline_cell(baseline: dict[str, Any] | None) -> str:
    """As on the board's CSV: "" for a team, runner:NAME:VERSION, uploaded, reported:SOURCE."""
    if baseline is None:
        return ""
    if baseline.get("kind") == "runner":
        return f"runner:{baseline.get('runner')}:{baseline.get('version')}"
    if baseline.get("kind") == "reported":
        return f"reported:{baseline.get('source')}"
    return str(baseline.get("kind"))


def boards_csv(*, phase: Phase, by: AbstractBaseUser) -> Iterator[bytes]:
    """Every board of the phase in one CSV (BOARD_COLUMNS), board after board."""
    lines = _Lines()
    yield lines.row(BOARD_COLUMNS)
    for _, _, rows in board_records(phase=phase, by=by):
        for record in rows:
            yield lines.row([_baseline_cell(record["baseline"]) if name == "baseline" else record[name]
                             for name in BOARD_COLUMNS])


def boards_json(*, phase: Phase, by: AbstractBaseUser) -> Iterator[bytes]:
    """{"challenge", "phase", "exported_at", "metric", "boards": [{"split", "public", "rows": [...]}, ...]}."""
    head = {**_phase_header(phase), "metric": phase.primary_metric}
    yield from _json_array(head, "boards", ({"split": split, "public": public, "rows": rows}
                                            for split, public, rows in board_records(phase=phase, by=by)))


# --- the per-expression results, zipped -------------------------------------------------------------------

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["submission_id", "file", "bytes", "team_id", "team", "submitter", "method_name", "status",
                    "is_baseline", "is_public", "hidden", "submitted_at", "finished_at", "scorer_version",
                    "gt_version", "note"]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, limit: int = 60) -> str:
    """A file-name part from a user's text: ASCII letters, digits, `.`, `_`, `-` (no path, no leading dot)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _UNSAFE.sub("_", ascii_text).strip("._-")[:limit].strip("._-") or "unnamed"


def results_entry_name(*, submission_id: int, team: str | None, method: str) -> str:
    """`<submission id>-<team>-<method>.csv` (a baseline's team part is `baseline`)."""
    return f"{submission_id}-{safe_name(team or 'baseline')}-{safe_name(method)}.csv"


class _Pipe(io.RawIOBase):
    """An unseekable file zipfile writes into; the bytes are taken out as they come (nothing accumulates)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _finished_with_results(phase: Phase) -> Iterator[Submission]:
    last = 0
    while True:
        batch = list(Submission.objects.filter(phase=phase, status=Submission.Status.FINISHED, pk__gt=last)
                     .exclude(details="").select_related("team", "user").order_by("pk")[:BATCH])
        if not batch:
            return
        last = batch[-1].pk
        yield from batch


def _zip_time(moment: dt.datetime | None) -> tuple[int, int, int, int, int, int]:
    moment = (moment or timezone.now()).astimezone(dt.UTC)
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def results_zip(*, phase: Phase) -> Iterator[bytes]:
    """A zip with the stored per-expression results file (as the scorer wrote it) of every finished submission,
    named by results_entry_name, and MANIFEST: one line per such submission (a file missing from storage is
    listed with a note and no entry). Written as it is read: zipfile streams into _Pipe."""
    pipe = _Pipe()
    lines = _Lines()
    # The manifest comes last (a file missing from storage is known once tried); its lines wait in a spooled
    # file, in memory while small.
    manifest = tempfile.SpooledTemporaryFile(max_size=CHUNK * 16)  # noqa: SIM115 (closed by the with below)
    manifest.write(lines.row(MANIFEST_COLUMNS))
    with manifest, zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for submission in _finished_with_results(phase):
            name = results_entry_name(submission_id=submission.pk, team=submission.team.name if submission.team
                                      else None, method=submission.method_name)
            written, note = 0, ""
            try:
                handle = submission.details.open("rb")
            except OSError as exc:  # gone from storage: the organizers learn which, the rest is exported
                note, name = f"results file missing from storage ({type(exc).__name__})", ""
            else:
                info = zipfile.ZipInfo(name, date_time=_zip_time(submission.finished_at))
                info.compress_type = zipfile.ZIP_DEFLATED
                with handle, archive.open(info, "w") as entry:
                    while chunk := handle.read(CHUNK):
                        entry.write(chunk)
                        written += len(chunk)
                        yield pipe.take()
            yield pipe.take()
            manifest.write(lines.row([
                submission.pk, name, written if name else "", submission.team_id,
                submission.team.name if submission.team else None,
                submission.user.get_username() if submission.user else None, submission.method_name,
                submission.status, submission.is_baseline, submission.is_public, submission.hidden,
                _iso(submission.submitted_at), _iso(submission.finished_at), submission.scorer_version,
                submission.gt_version, note]))
        info = zipfile.ZipInfo(MANIFEST, date_time=_zip_time(None))
        info.compress_type = zipfile.ZIP_DEFLATED
        manifest.seek(0)
        with archive.open(info, "w") as entry:
            while chunk := manifest.read(CHUNK):
                entry.write(chunk)
                yield pipe.take()
    yield pipe.take()


# --- the one entry point ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """One export of one phase: a file name to save it as, its type, and its bytes as they are made."""

    filename: str
    content_type: str
    chunks: Iterator[bytes]


User = AbstractBaseUser | AnonymousUser | None
_MAKERS: dict[str, tuple[str, Callable[[Phase, Any], Iterator[bytes]]]] = {
    "submissions.csv": ("text/csv; charset=utf-8", lambda phase, by: submissions_csv(phase=phase)),
    "submissions.json": ("application/json", lambda phase, by: submissions_json(phase=phase)),
    "boards.csv": ("text/csv; charset=utf-8", lambda phase, by: boards_csv(phase=phase, by=by)),
    "boards.json": ("application/json", lambda phase, by: boards_json(phase=phase, by=by)),
    "results.zip": ("application/zip", lambda phase, by: results_zip(phase=phase)),
}
EXPORTS = tuple(_MAKERS)


def export_allowed(*, phase: Phase, by: User) -> bool:
    """Whether the user may export the phase's data (its challenge's organizers, viewers included)."""
    return organizer_can(by, phase.challenge_id, Can.VIEW)


def phase_export(*, phase: Phase, name: str, by: User) -> Export:
    """The export `name` (one of EXPORTS) of the phase, made for `by`. NotFound when they may not see it (as if
    there were no such phase) or there is no such export. The permission is asked now, not when the first
    bytes are read."""
    if not export_allowed(phase=phase, by=by):
        raise NotFound(f"There is no phase {phase.pk} that you organize.")
    if name not in _MAKERS:
        raise NotFound(f"There is no export {name!r}; the exports are {', '.join(EXPORTS)}.")
    content_type, make = _MAKERS[name]
    return Export(filename=f"{phase.challenge.slug}-{phase.slug}-{name}", content_type=content_type,
                  chunks=make(phase, by))
