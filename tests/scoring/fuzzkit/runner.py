"""Run a fuzz case through the library's entry points and judge how it ended.

A submission goes through `open_source` (every file read), `validate_submission` without and
with the ground truth, and `evaluate`; a ground-truth tree through `load_ground_truth`, and
when it loads, the valid submission is scored against it. Every call must end in a result or
the library's own error (InvalidSubmission, InvalidGroundTruth) whose message is a sentence
and, for a problem in one file, names that file; `validate_submission` with the ground truth
must report exactly the problems `evaluate` raises. Anything else is an escape: an exception
of another type (MemoryError under a memory cap included), a broken rule, or a Python warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import resource
import shutil
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from scoring import (
    InvalidGroundTruth,
    InvalidSubmission,
    Limits,
    ScoringError,
    evaluate,
    load_ground_truth,
    validate_submission,
)
from scoring.archive import open_source

from .cases import Case, Materials
from .zips import Entry, zip_bytes

CASE_BUDGET_MB = 256  # resident memory one case may add (the tiny benchmark's largest valid case takes about 70)
# Problems that lie in one file: their location must name it.
FILE_CODES = frozenset({"malformed_json", "malformed_rle", "mask_size", "invalid_png", "image_bomb"})


@dataclass(frozen=True)
class Escape:
    entry_point: str
    kind: str  # "exception", "rule" or "warning"
    error: str  # the exception's or warning's type, or the rule broken
    message: str
    where: str = ""  # the innermost frame of the traceback

    def __str__(self) -> str:
        where = f" (at {self.where})" if self.where else ""
        return f"{self.entry_point}: {self.kind} {self.error}: {self.message}{where}"


@dataclass
class Result:
    outcome: str  # "scored", an error code, or for ground truth "gt:<code>" / "gt:loaded/<scored or code>"
    escapes: list[Escape] = field(default_factory=list)
    message: str = ""  # the library's error, as it would be shown


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""


def _call(point: str, function: Callable[[], Any], expected: type[ScoringError], escapes: list[Escape]
          ) -> tuple[bool, Any, ScoringError | None]:
    """(ended well, the value, the library's error) of one entry point; an escape is recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value, error, ok = function(), None, True
        except expected as exc:
            value, error, ok = None, exc, True
        except Exception as exc:  # noqa: BLE001 - anything else is what the fuzzer looks for
            escapes.append(Escape(point, "exception", type(exc).__name__, str(exc)[:300], _where(exc)))
            value, error, ok = None, None, False
    escapes += [Escape(point, "warning", w.category.__name__, str(w.message)[:300],
                       f"{Path(w.filename).name}:{w.lineno}") for w in caught]
    return ok, value, error


def _sentence(error: ScoringError) -> str | None:
    message = error.message
    if not isinstance(message, str) or message != message.strip() or len(message.split()) < 3:
        return f"not a sentence: {message!r}"
    if "Traceback" in message or "object at 0x" in message:
        return f"internals in the message: {message!r}"
    return _unwritable(error)


def _unwritable(problem: object) -> str | None:
    """A rule for every message and warning: it can be printed, stored and sent as UTF-8."""
    try:
        str(problem).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"cannot be written as UTF-8 ({exc.reason}): {str(problem)!r}"
    return None


def _warning_rules(point: str, warned: Any) -> list[Escape]:
    return [Escape(point, "rule", "warning text", rule) for w in warned if (rule := _unwritable(w))]


def submission_rules(error: InvalidSubmission, names: set[str] | None) -> list[str]:
    """The rules an InvalidSubmission breaks: a sentence, naming the file when the problem lies in one."""
    broken = [problem for problem in [_sentence(error)] if problem]
    file = error.location.file
    if error.code in FILE_CODES and (not file or (names is not None and file not in names)):
        broken.append(f"{error.code} does not name a file of the submission (location {error.location.as_dict()})")
    if error.code in ("not_a_zip", "unsafe_entry") and not file and "empty name" not in error.message:
        broken.append(f"{error.code} does not name the file (location {error.location.as_dict()})")
    return broken


def groundtruth_rules(error: InvalidGroundTruth, label: str) -> list[str]:
    broken = [problem for problem in [_sentence(error)] if problem]
    where = error.location
    if not (where.file or where.video or label in error.message or error.message.startswith("cannot read the ground")):
        broken.append(f"does not say where: {error}")
    return broken


def _judge(point: str, error: ScoringError | None, rules: Callable[[Any], list[str]], escapes: list[Escape]) -> None:
    if error is None:
        return
    for problem in getattr(error, "problems", (error,)):
        escapes += [Escape(point, "rule", "message", rule) for rule in rules(problem)]


def _problems(error: InvalidSubmission | None) -> list[dict[str, object]]:
    return [p.as_dict() for p in error.problems] if error is not None else []


def _score_rules(evaluation: Any, expected: int) -> list[str]:
    broken = []
    for split, metrics in evaluation.as_dict().items():
        for name, value in metrics.items():
            if not (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 100.0):
                broken.append(f"{split} {name} is {value!r}")
    if len(evaluation.expressions) != expected:
        broken.append(f"{len(evaluation.expressions)} expression rows for {expected} expressions")
    return broken


def read_everything(path: Path, limits: Any) -> set[str]:
    """open_source, then every file read: the names it lists."""
    with open_source(path, limits) as source:
        for name in source.files:
            source.read(name)
        return set(source.files)


def run_submission(path: Path, m: Materials, limits: Any, gt: Any = None, split: str | None = None) -> Result:
    """Every entry point on one submission; `gt` defaults to the tiny benchmark."""
    gt = m.gt if gt is None else gt
    escapes: list[Escape] = []
    name = path.name

    def rules(error: InvalidSubmission) -> list[str]:
        return submission_rules(error, None if names is None else names | {name})

    names: set[str] | None = None
    ok, names, opened = _call("open_source", lambda: read_everything(path, limits), InvalidSubmission, escapes)
    _judge("open_source", opened, rules, escapes)
    ok, structural, _ = _call("validate_submission", lambda: validate_submission(path, limits=limits),
                              InvalidSubmission, escapes)
    if structural is not None:
        for error in structural.errors:
            escapes += [Escape("validate_submission", "rule", "message", r) for r in rules(error)]
        escapes += _warning_rules("validate_submission", structural.warnings)
    ok_v, report, _ = _call("validate_submission(gt)",
                            lambda: validate_submission(path, gt=gt, split=split, limits=limits),
                            InvalidSubmission, escapes)
    ok_e, evaluation, refused = _call("evaluate", lambda: evaluate(gt, path, split=split, limits=limits),
                                     InvalidSubmission, escapes)
    _judge("evaluate", refused, rules, escapes)
    if evaluation is not None:
        expected = len(list(gt.expressions(None if split in (None, "all") else (split,))))
        escapes += [Escape("evaluate", "rule", "score", r) for r in _score_rules(evaluation, expected)]
        escapes += _warning_rules("evaluate", evaluation.warnings)
    if report is not None:
        escapes += _warning_rules("validate_submission(gt)", report.warnings)
    if ok_v and ok_e and report is not None:
        reported = [e.as_dict() for e in report.errors]
        if reported != _problems(refused):
            escapes.append(Escape("validate_submission(gt)", "rule", "agreement",
                                  f"reports {reported[:2]} but evaluate raised {_problems(refused)[:2]}"))
    if not ok_e:
        return Result("escape", escapes)
    if evaluation is not None:
        return Result("scored", escapes)
    return Result(refused.code, escapes, str(refused))  # type: ignore[union-attr]


def run_groundtruth(path: Path, m: Materials, workdir: Path) -> Result:
    escapes: list[Escape] = []
    ok, gt, refused = _call("load_ground_truth", lambda: load_ground_truth(path), InvalidGroundTruth, escapes)
    _judge("load_ground_truth", refused, lambda e: groundtruth_rules(e, path.name), escapes)
    if gt is None:
        return Result(f"gt:{refused.code}" if ok else "gt:escape", escapes, str(refused or ""))
    cache = workdir / "gt-cache"
    _, cached, _ = _call("load_ground_truth(cache)", lambda: [load_ground_truth(path, cache=cache) for _ in range(2)],
                         InvalidGroundTruth, escapes)
    if cached is not None and any(c.version != gt.version or c.runs.counts.tobytes() != gt.runs.counts.tobytes()
                                  for c in cached):
        escapes.append(Escape("load_ground_truth(cache)", "rule", "cache", "a cached load differs from a fresh one"))
    scored = run_submission(m.base_zip, m, None, gt)
    return Result(f"gt:loaded/{scored.outcome}", escapes + scored.escapes, scored.message)


def write_input(case: Case, workdir: Path) -> Path:
    """The case's input on disk: a zip file, or a folder of its entries (names a folder cannot hold are left out)."""
    stem = "gt" if case.target == "groundtruth" else "sub"
    workdir.mkdir(parents=True, exist_ok=True)
    for old in (workdir / stem, workdir / f"{stem}.zip", workdir / "gt-cache"):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    if case.container == "zip":
        path = workdir / f"{stem}.zip"
        path.write_bytes(case.data)
        return path
    root = workdir / stem
    root.mkdir(parents=True)
    written = []
    for entry in case.entries:
        relative = PurePosixPath(entry.name)
        if entry.name.startswith("/") or "\0" in entry.name or ".." in relative.parts or not relative.parts:
            continue
        target = root.joinpath(*relative.parts)
        try:
            if entry.folder or entry.name.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(entry.data)
            written.append(entry)
        except OSError:  # a file where a folder is, a name too long: not a tree a folder can hold
            continue
    case.entries = written
    return root


def run_case(case: Case, m: Materials, workdir: Path) -> Result:
    path = write_input(case, workdir)
    if case.target == "groundtruth":
        return run_groundtruth(path, m, workdir)
    return run_submission(path, m, case.limits, split=case.split)


# --- reproducers ---------------------------------------------------------------------------------------------------


def case_bytes(case: Case) -> bytes:
    """What a reproducer file holds: the zip, or for a folder case a zip of the tree it wrote."""
    return case.data if case.container == "zip" else zip_bytes(case.entries)


def reproducer_name(case: Case) -> str:
    digest = hashlib.sha256(case_bytes(case) + repr((case.limits, case.split)).encode()).hexdigest()[:12]
    return f"{digest}-{case.target}-{case.container}.zip"


def save_reproducer(case: Case, result: Result, corpus: Path) -> Path:
    """Keep a case that escaped: its input, and a note of what was done and what escaped."""
    corpus.mkdir(parents=True, exist_ok=True)
    path = corpus / reproducer_name(case)
    path.write_bytes(case_bytes(case))
    note = {"target": case.target, "container": case.container, "limits": dataclasses.asdict(case.limits),
            "split": case.split, "steps": case.steps, "outcome": result.outcome,
            "escapes": [str(e) for e in result.escapes]}
    path.with_suffix(".json").write_text(json.dumps(note, indent=1) + "\n")
    return path


def load_reproducer(path: Path) -> Case:
    """The case a reproducer file holds (its name says the target and the container, its note the limits and split)."""
    _, target, container = path.stem.rsplit("-", 2)
    note = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else {}
    data = path.read_bytes()
    entries: list[Entry] = []
    if container == "folder":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [Entry(i.filename, archive.read(i), folder=i.is_dir()) for i in archive.infolist()]
    return Case(target, container, entries, data=data, limits=Limits(**note.get("limits", {})),
                split=note.get("split"), steps=note.get("steps", []))


# --- many cases ------------------------------------------------------------------------------------------------------


@dataclass
class Report:
    cases: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    escapes: list[tuple[str, Escape, str]] = field(default_factory=list)  # (reproducer, escape, steps)
    peak_rss_mb: float = 0.0
    slowest: list[tuple[float, str, str]] = field(default_factory=list)  # (seconds, outcome, steps), the 5 slowest

    def as_dict(self) -> dict[str, object]:
        return {"cases": self.cases, "seconds": round(self.seconds, 1),
                "cases_per_second": round(self.cases / self.seconds, 1) if self.seconds else 0.0,
                "outcomes": dict(self.outcomes.most_common()), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "slowest": [{"seconds": round(t, 2), "outcome": o, "steps": s} for t, o, s in self.slowest],
                "escapes": [{"reproducer": r, "escape": str(e), "steps": s} for r, e, s in self.escapes]}


def peak_rss_mb() -> float:
    """The process's peak RSS: since the last reset_peak_rss() where Linux allows it, else since it started."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Start measuring the peak RSS afresh (Linux: clear_refs 5); False where it cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def run_many(cases: Iterator[Case], m: Materials, workdir: Path, corpus: Path | None = None,
             on_case: Callable[[int, Case, Result], None] | None = None, budget_mb: float | None = None) -> Report:
    """Run every case; escapes are kept under `corpus` (one reproducer per distinct input).

    With `budget_mb`, a case during which the process's RSS rose more than that above what it was
    before the case is an escape too (RLIMIT_AS, set by the caller, is the hard cap).
    """
    report = Report()
    start = time.perf_counter()
    for number, case in enumerate(cases):
        reset_peak_rss()
        before, began = peak_rss_mb(), time.perf_counter()
        result = run_case(case, m, workdir)
        after, took = peak_rss_mb(), time.perf_counter() - began
        report.slowest = sorted([*report.slowest, (took, result.outcome, " | ".join(case.steps))], reverse=True)[:5]
        report.peak_rss_mb = max(report.peak_rss_mb, after)
        if budget_mb is not None and after - before > budget_mb:
            result.escapes.append(Escape("memory", "rule", "peak RSS", f"rose from {before:.0f} MB to {after:.0f} MB "
                                         f"during the case, more than the budget of {budget_mb:.0f} MB"))
        report.cases += 1
        report.outcomes[result.outcome] += 1
        if result.escapes:
            where = str(save_reproducer(case, result, corpus)) if corpus is not None else reproducer_name(case)
            report.escapes += [(where, escape, " | ".join(case.steps)) for escape in result.escapes]
        if on_case is not None:
            on_case(number, case, result)
    report.seconds = time.perf_counter() - start
    report.peak_rss_mb = max(report.peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return report
