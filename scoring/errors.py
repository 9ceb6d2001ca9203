"""Typed errors and warnings of the scoring library.

Every problem carries a sentence a participant can act on and where it happened, so the CLI, the
worker and the web page can all show the same words. Nothing here prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass


def writable(text: str) -> str:
    """`text` with any lone surrogate written as its escape (\\ud800): names come from JSON keys, which may
    hold one, and from folder names that are not UTF-8 (\\udcff); every message must print and store as UTF-8."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


_LOCATION_FIELDS = ("file", "split", "video", "expression", "frame")


@dataclass(frozen=True)
class Location:
    """Where a problem was found; every field is optional."""

    file: str | None = None
    split: str | None = None
    video: str | None = None
    expression: str | None = None
    frame: str | None = None

    def __post_init__(self) -> None:
        for name in _LOCATION_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str) and not value.isascii():
                object.__setattr__(self, name, writable(value))

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        for label, value in (
            ("split", self.split),
            ("video", self.video),
            ("expression", self.expression),
            ("frame", self.frame),
        ):
            if value is not None:
                parts.append(f"{label} {value}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, str]:
        return {
            key: value
            for key, value in (
                ("file", self.file),
                ("split", self.split),
                ("video", self.video),
                ("expression", self.expression),
                ("frame", self.frame),
            )
            if value is not None
        }


class ScoringError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "error"

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = writable(message)
        self.location = location or Location()
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.location)
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "location": self.location.as_dict()}


# --- ground truth ---------------------------------------------------------------------------


class InvalidGroundTruth(ScoringError):
    """The ground-truth tree is broken; an organizer has to fix it."""

    code = "groundtruth"


# --- submissions ----------------------------------------------------------------------------


class InvalidSubmission(ScoringError):
    """A submission cannot be scored. Subclasses say why; `problems` lists every one found."""

    code = "submission"

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message, location)
        self.problems: tuple[InvalidSubmission, ...] = (self,)

    def with_problems(self, problems: tuple[InvalidSubmission, ...]) -> InvalidSubmission:
        """This error, standing for all `problems` found in one pass (itself first)."""
        self.problems = problems
        return self

    def summary(self) -> str:
        """One line: the first problem, and how many more there are."""
        more = len(self.problems) - 1
        return str(self) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else "")


class NotAZip(InvalidSubmission):
    code = "not_a_zip"


class UnsafeEntry(InvalidSubmission):
    """Absolute path, `..`, symlink, device or other special entry."""

    code = "unsafe_entry"


class ZipBomb(InvalidSubmission):
    """Too many entries, too many bytes once uncompressed, or a suspicious compression ratio."""

    code = "zip_bomb"


class BadLayout(InvalidSubmission):
    """The files are not arranged as <split>/<video>/<exp_id>/... ."""

    code = "bad_layout"


class ConflictingFormats(InvalidSubmission):
    """RLE JSON and PNG masks for the same expression, or several RLE files."""

    code = "conflicting_formats"


class MalformedJSON(InvalidSubmission):
    code = "malformed_json"


class MalformedRLE(InvalidSubmission):
    code = "malformed_rle"


class MaskSizeMismatch(InvalidSubmission):
    code = "mask_size"


class InvalidPNG(InvalidSubmission):
    code = "invalid_png"


class ImageBomb(InvalidPNG):
    code = "image_bomb"


# --- warnings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringWarning:
    """Something that did not stop scoring but that the participant should know about."""

    code: str
    message: str
    location: Location = Location()

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", writable(self.message))

    def __str__(self) -> str:
        where = str(self.location)
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "location": self.location.as_dict()}
