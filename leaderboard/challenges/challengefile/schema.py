"""The challenge file's schema (format 1), checked with pydantic: every problem at once, each with its path
in the file and its line, unknown keys refused (a typo must not be silently ignored). See
docs/challenge-yaml.md for every key. The schema knows no database: whether a user, a bundle or a file
exists is resolved when the file is applied (apply.py), with the same error shape.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from pydantic import (BaseModel, ConfigDict, Field, PlainValidator, ValidationError as PydanticError,
                      ValidationInfo, field_validator, model_validator)

from scoring import METRICS, PRIMARY_METRIC

from ..models import SPLIT_ORDER, validate_time_zone
from .yamlfile import Document, SpecErrors, read_yaml

FORMAT = 1
_ZONED = re.compile(r"^(?P<local>[^\[\]]+)\[(?P<zone>[A-Za-z0-9_+\-/]+)\]$")


def _when(value: Any) -> dt.datetime:
    """An ISO 8601 date and time with an explicit offset (`2025-09-01T00:00:00-12:00`, `...Z`) or zone
    (`2025-09-01T00:00:00[Europe/Paris]`); a naive one is refused, never guessed."""
    if not isinstance(value, str):
        raise ValueError("must be a date and time as text, e.g. 2025-09-01T00:00:00-12:00")
    text = value.strip()
    zoned = _ZONED.match(text)
    try:
        if zoned:
            when = dt.datetime.fromisoformat(zoned["local"])
            if when.tzinfo is not None:
                raise ValueError("give either an offset or a [zone], not both")
            when = when.replace(tzinfo=zoneinfo.ZoneInfo(zoned["zone"]))
        else:
            when = dt.datetime.fromisoformat(text)
    except zoneinfo.ZoneInfoNotFoundError:
        raise ValueError(f"{zoned['zone']!r} is not a time zone name") from None  # type: ignore[index]
    except ValueError as exc:
        if "offset or a [zone]" in str(exc):
            raise
        raise ValueError(f"{value!r} is not an ISO 8601 date and time, e.g. 2025-09-01T00:00:00-12:00") from None
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: write its offset or zone, e.g. 2025-09-01T00:00:00-12:00 "
                         "(AoE) or 2025-09-01T00:00:00[Europe/Paris]")
    return when


When = Annotated[dt.datetime, PlainValidator(_when)]
Slug = Annotated[str, Field(min_length=1, max_length=50)]
Count = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _slug(value: str) -> str:
    try:
        validate_slug(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not a slug (letters, digits, - and _)") from None
    return value


class ChallengeSpec(Strict):
    slug: Slug
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    terms: str = ""
    time_zone: str = "UTC"
    published: bool = True

    _check_slug = field_validator("slug")(_slug)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            validate_time_zone(value)
        except ValidationError as exc:
            raise ValueError(exc.messages[0]) from None
        return value


class HostSpec(Strict):
    username: Annotated[str, Field(min_length=1, max_length=150)]
    role: Literal["owner", "organizer", "viewer"] = "organizer"


class Quota(Strict):
    per_day: Count | None = None
    total: Count | None = None
    counts_failed: bool = False  # a file that fails on its problems counts too (Phase.quota_counts_failed)


class Statistics(Strict):
    """The phase's confidence intervals, tie groups and trait buckets (Phase's fields of the same names)."""

    bootstrap_samples: Annotated[int, Field(ge=100, le=100_000)] = 1000
    tie_level: Annotated[float, Field(ge=0.0001, le=0.5, allow_inf_nan=False)] = 0.05
    min_bucket_size: Annotated[int, Field(ge=1)] = 10


class GroundTruthRef(Strict):
    """An existing bundle (`version`, or `name`), or a zip to upload (`file`, relative to the YAML, with the
    new bundle's `name`)."""

    version: Annotated[str, Field(min_length=8, max_length=64)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> GroundTruthRef:
        if self.version is not None and self.file is not None:
            raise ValueError("give the bundle's version or a file to upload, not both")
        if self.version is None and self.file is None and self.name is None:
            raise ValueError("give the bundle's version (or name), or a file to upload")
        return self


Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Split = Literal[tuple(SPLIT_ORDER)]  # type: ignore[valid-type]


class ReportedSpec(Strict):
    method: Annotated[str, Field(min_length=1, max_length=200)]
    source: str
    citation: Annotated[str, Field(max_length=300)] = ""
    note: str = ""
    values: dict[str, dict[str, Percent]]

    @field_validator("source")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            raise ValueError(f"must be an http(s) address, not {value!r}") from None
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, values: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        problems = [f"unknown split {split!r} (one of {', '.join(SPLIT_ORDER)})" for split in values
                    if split not in SPLIT_ORDER]
        problems += [f"{split}: unknown metric {metric!r} (one of {', '.join(METRICS)})"
                     for split, metrics in values.items() for metric in metrics if metric not in METRICS]
        problems += [f"{split}: give at least one metric" for split, metrics in values.items() if not metrics]
        if not values:
            problems.append("give the numbers of at least one split")
        if problems:
            raise ValueError("; ".join(problems))
        return {split: {m: float(v) for m, v in metrics.items()} for split, metrics in values.items()}


class PhaseSpec(Strict):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    order: Count | None = None  # default: its place in the list
    opens: When | None = None
    closes: When | None = None
    accepts_submissions: bool = True
    quota: Quota = Quota()
    visibility: Literal["public", "private"] = "public"
    reveal_at: When | None = None
    primary_metric: Literal[tuple(METRICS)] = PRIMARY_METRIC  # type: ignore[valid-type]
    ranking_rule: Literal["best", "latest"] = "best"
    show_expression_details: bool = False
    statistics: Statistics = Statistics()
    ladder: bool = False  # the Ladder (scoring/ladder.py) while the phase runs
    ladder_step: Annotated[float, Field(ge=0.01, le=50.0, allow_inf_nan=False)] = 1.0  # points of the primary metric
    requires_terms: bool = False
    splits: list[Split] = Field(default_factory=lambda: list(SPLIT_ORDER))
    ground_truth: GroundTruthRef | None = None
    reported: list[ReportedSpec] | None = None  # None (absent): the phase's reported rows are left as they are

    _check_slug = field_validator("slug")(_slug)

    # Checks across keys are field validators that read the keys declared before them (info.data), so they
    # run, and point at their key, even when another key of the phase is wrong.
    @field_validator("closes")
    @classmethod
    def _after_opens(cls, closes: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        opens = info.data.get("opens")
        if closes is not None and opens is not None and closes <= opens:
            raise ValueError("must come after opens")
        return closes

    @field_validator("reveal_at")
    @classmethod
    def _private_only(cls, reveal_at: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        if reveal_at is not None and info.data.get("visibility") == "public":
            raise ValueError("is for a private board (visibility: private)")
        return reveal_at

    @field_validator("splits")
    @classmethod
    def _boards(cls, splits: list[str]) -> list[str]:
        if not splits:
            raise ValueError("name at least one board")
        if len(set(splits)) != len(splits):
            raise ValueError("a board is listed twice")
        return splits

    @field_validator("reported")
    @classmethod
    def _rows(cls, reported: list[ReportedSpec] | None, info: ValidationInfo) -> list[ReportedSpec] | None:
        if reported is None:
            return None
        methods = [r.method for r in reported]
        twice = sorted({m for m in methods if methods.count(m) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} listed twice")
        splits = info.data.get("splits") or SPLIT_ORDER
        for row in reported:
            extra = [split for split in row.values if split not in splits]
            if extra:
                raise ValueError(f"{row.method!r} gives numbers for {', '.join(extra)}, which is not one of the "
                                 "phase's splits")
        return reported


class ChallengeFile(Strict):
    format: Literal[1]
    challenge: ChallengeSpec
    hosts: list[HostSpec] | None = None  # None (absent): the hosts are left as they are
    phases: list[PhaseSpec] = Field(default_factory=list)

    @field_validator("hosts")
    @classmethod
    def _hosts_once(cls, hosts: list[HostSpec] | None) -> list[HostSpec] | None:
        names = [h.username for h in hosts or []]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} listed twice")
        return hosts

    @field_validator("phases")
    @classmethod
    def _phases_once(cls, phases: list[PhaseSpec]) -> list[PhaseSpec]:
        slugs = [p.slug for p in phases]
        twice = sorted({s for s in slugs if slugs.count(s) > 1})
        if twice:
            raise ValueError(f"the slug {', '.join(map(repr, twice))} is used twice")
        # A phase without an order takes its place in the list.
        return [p if p.order is not None else p.model_copy(update={"order": index}) for index, p in enumerate(phases)]


def _message(error: dict[str, Any]) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (a typo? see docs/challenge-yaml.md for the keys)"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return message.replace("Input should be", "must be")
    return message.removeprefix("Value error, ").replace("Input should be", "must be")


def parse_document(document: Document) -> ChallengeFile:
    """The checked file, or SpecErrors listing every problem (path and line)."""
    if not isinstance(document.data, dict):
        raise SpecErrors([document.error((), "the file must be a mapping with format, challenge, hosts, phases")])
    try:
        return ChallengeFile.model_validate(document.data)
    except PydanticError as exc:
        errors = []
        for error in exc.errors():
            # Validators of a union or a wrapped type add steps that are not keys of the file.
            path = tuple(p for p in error["loc"] if not (isinstance(p, str) and p not in _keys(document, error)))
            errors.append(document.error(path, _message(error)))
        # In the order of the file (the schema's order is not the author's).
        errors.sort(key=lambda e: (e.line is None, e.line or 0))
        raise SpecErrors(_unique_errors(errors)) from None


def _keys(document: Document, error: dict[str, Any]) -> set[str]:
    """The keys the file itself has (and the schema's), to tell a step of the path from a validator's name."""
    names = set(ChallengeFile.model_fields) | set(ChallengeSpec.model_fields) | set(PhaseSpec.model_fields) \
        | set(HostSpec.model_fields) | set(ReportedSpec.model_fields) | set(GroundTruthRef.model_fields) \
        | set(Quota.model_fields) | set(SPLIT_ORDER) | set(METRICS)
    names |= {p for path in document.lines for p in path if isinstance(p, str)}
    return names


def _unique_errors(errors: list[Any]) -> list[Any]:
    seen, kept = set(), []
    for error in errors:
        key = (error.path, error.message)
        if key not in seen:
            seen.add(key)
            kept.append(error)
    return kept


def parse_text(text: str) -> tuple[ChallengeFile, Document]:
    """Read and check a challenge file's text: the checked file and its document (for resolution errors)."""
    document = read_yaml(text)
    return parse_document(document), document


__all__ = ["FORMAT", "ChallengeFile", "GroundTruthRef", "HostSpec", "PhaseSpec", "ReportedSpec", "parse_text"]
