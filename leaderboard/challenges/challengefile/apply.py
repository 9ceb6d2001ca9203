"""`challenge_apply`: make the database say what a challenge file says, in one transaction, and tell the diff.

One pass compares each item of the file with the database and, unless it is a dry run, writes the
difference through the services (phase_create, phase_set_splits, host_set / host_remove,
reported_sync, phase_set_ground_truth), so what the diff says and what is written cannot differ.
Objects are saved with .save() and `_history_user`, for the audit log. Idempotent: the same file
twice writes nothing the second time and says "no changes".

What the file does not list:
- phases are never deleted (their submissions and scores are the teams'): "not in the file, kept";
- hosts, a phase's boards (splits) and a phase's reported rows are the file's when it has the key:
  those it does not list are removed; without the key (`hosts:` absent, `reported:` absent) they are
  left as they are;
- a phase without `ground_truth` keeps the one it has.

This sub-package sits above the challenges core: it imports submissions (boards, rescoring) and
baselines (reported rows), which the challenges models and services never do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from leaderboard.baselines.models import ReportedResult
from leaderboard.baselines.reported import Reported, reported_sync
from leaderboard.errors import NotAllowed
from leaderboard.submissions.boards import boards_deferred
from leaderboard.submissions.rescoring import phase_set_ground_truth, stale_submissions
from scoring import InvalidGroundTruth, load_ground_truth

from ..models import SPLIT_ORDER, Challenge, GroundTruthBundle, Host, Phase
from ..permissions import Can, organizer_can
from ..selectors import bundle_find
from ..services import ground_truth_check, ground_truth_create, host_remove, host_set, phase_create, phase_set_splits
from .schema import ChallengeFile, PhaseSpec, parse_text
from .yamlfile import Document, SpecError, SpecErrors

# Model field <- file key, in the order the diff lists them.
CHALLENGE_FIELDS = {"title": "title", "description": "description", "terms": "terms", "time_zone": "time_zone",
                    "is_published": "published"}
PHASE_FIELDS = ["name", "description", "order", "starts_at", "ends_at", "accepts_submissions", "max_per_day",
                "max_total", "quota_counts_failed", "visibility", "reveal_at", "primary_metric", "ranking_rule",
                "show_expression_details", "bootstrap_samples", "tie_level", "min_bucket_size", "ladder",
                "ladder_step", "requires_terms"]
PHASE_KEYS = {"starts_at": "opens", "ends_at": "closes", "max_per_day": "quota.per_day", "max_total": "quota.total",
              "quota_counts_failed": "quota.counts_failed", "bootstrap_samples": "statistics.bootstrap_samples",
              "tie_level": "statistics.tie_level", "min_bucket_size": "statistics.min_bucket_size"}


@dataclass
class Change:
    """One line of the diff: an item (`what`), what happens to it, and its fields' old -> new."""

    what: str
    verb: str  # created | changed | removed | not in the file, kept
    fields: list[tuple[str, str, str]] = field(default_factory=list)
    note: str = ""

    def lines(self) -> list[str]:
        head = f"{self.what}: {self.verb}" + (f" ({self.note})" if self.note else "")
        return [head, *(f"    {name}: {old} → {new}" for name, old, new in self.fields)]


@dataclass
class Plan:
    """What applying a file did (or, in a dry run, would do)."""

    slug: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(change.verb in ("created", "changed", "removed") for change in self.changes)

    def text(self) -> str:
        body = [line for change in self.changes for line in change.lines()]
        if not self.changed:
            return "\n".join([*body, f"{self.slug}: no changes."])
        tail = "Dry run: nothing was written." if self.dry_run else "Applied."
        return "\n".join([*body, tail])


@dataclass
class _Bundles:
    """The ground truth each phase of the file names: an existing bundle, or a zip to upload."""

    existing: dict[int, GroundTruthBundle] = field(default_factory=dict)  # phase index -> bundle
    uploads: dict[int, tuple[Path, str, str]] = field(default_factory=dict)  # index -> (zip, name, version)
    uploaded: dict[Path, GroundTruthBundle] = field(default_factory=dict)  # a zip two phases name is stored once
    stored: list[GroundTruthBundle] = field(default_factory=list)  # what this run put in storage


def challenge_apply(*, text: str, base_dir: Path, by: AbstractBaseUser | None, dry_run: bool = False) -> Plan:
    """Check the challenge file `text` (paths in it relative to `base_dir`) and apply it as `by`: SpecErrors
    for the file's problems (all of them, with paths and lines), NotAllowed without the right to configure
    the challenge (staff only for a new one), else the Plan (nothing written when `dry_run`)."""
    spec, document = parse_text(text)
    stored: list[GroundTruthBundle] = []
    try:
        return _apply(spec, document, base_dir, by, dry_run, stored)
    except BaseException:
        # The rows went with the transaction; the zips this run put in storage go too.
        for bundle in stored:
            bundle.file.delete(save=False)
        raise


def _apply(spec: ChallengeFile, document: Document, base_dir: Path, by: AbstractBaseUser | None, dry_run: bool,
           stored: list[GroundTruthBundle]) -> Plan:
    with transaction.atomic(), boards_deferred():
        challenge = Challenge.objects.select_for_update().filter(slug=spec.challenge.slug).first()
        if challenge is None and not (by is not None and by.is_active and by.is_staff):
            # Who may create a challenge is a site question, not a challenge's: staff, as in the admin.
            raise NotAllowed(f"There is no challenge {spec.challenge.slug!r}; only staff create one.")
        if challenge is not None and not organizer_can(by, challenge, Can.CONFIGURE):
            raise NotAllowed(f"You may not configure the challenge {challenge.slug!r}.")
        users, unknown = _users(spec, document)
        bundles, unresolved = _bundles(spec, document, challenge, base_dir, dry_run)
        if unknown or unresolved:
            raise SpecErrors(sorted(unknown + unresolved, key=lambda e: e.line or 0))
        bundles.stored = stored
        plan = Plan(slug=spec.challenge.slug, dry_run=dry_run)
        write = not dry_run
        challenge = _challenge(spec, challenge, by, plan, write)
        zone = zoneinfo.ZoneInfo(spec.challenge.time_zone)
        if spec.hosts is not None:
            _hosts(spec, challenge, users, by, plan, write)
        known = {p.slug: p for p in challenge.phases.all()} if challenge is not None else {}
        for index, phase_spec in enumerate(spec.phases):
            bundle = _bundle_for(index, bundles, challenge, document, write)
            _phase(phase_spec, known.get(phase_spec.slug), challenge, bundle, bundles.uploads.get(index), by, zone,
                   plan, write)
        for slug in sorted(set(known) - {p.slug for p in spec.phases}):
            plan.changes.append(Change(f"phase {slug}", "not in the file, kept"))
    return plan


# --- resolving what the file names --------------------------------------------------------------


def _users(spec: ChallengeFile, document: Document) -> tuple[dict[str, AbstractBaseUser], list[SpecError]]:
    """The hosts' users by username, and an error for each that does not exist."""
    names = [host.username for host in spec.hosts or []]
    found = {u.get_username(): u for u in get_user_model().objects.filter(username__in=names, is_active=True)}
    missing = [document.error(("hosts", i, "username"), f"there is no active user {name!r}")
               for i, name in enumerate(names) if name not in found]
    return found, missing


def _bundles(spec: ChallengeFile, document: Document, challenge: Challenge | None, base_dir: Path,
             dry_run: bool) -> tuple[_Bundles, list[SpecError]]:
    """Each phase's ground truth resolved; every problem (unknown bundle, missing or invalid zip) at once. A zip
    already stored for the challenge (same sha256, ready) is that bundle: applying a file twice uploads once."""
    resolved, errors = _Bundles(), list[SpecError]()
    for index, phase in enumerate(spec.phases):
        ref = phase.ground_truth
        if ref is None:
            continue
        where = ("phases", index, "ground_truth")
        if ref.file is None:
            if challenge is None:
                errors.append(document.error(where, "the challenge is new, so it has no bundles yet: give a file"))
                continue
            bundle, why = bundle_find(challenge=challenge, ref=ref.version or ref.name or "")
            if bundle is None:
                errors.append(document.error((*where, "version" if ref.version else "name"), why))
            elif bundle.status != GroundTruthBundle.Status.READY:
                errors.append(document.error(where, f"the bundle {bundle.name!r} is {bundle.status}; only a ready "
                                                    "bundle can score a phase"))
            else:
                resolved.existing[index] = bundle
            continue
        path = (base_dir / ref.file).resolve()
        if not path.is_file():
            errors.append(document.error((*where, "file"), f"there is no file {path}"))
            continue
        sha256 = _sha256(path)
        stored = None
        if challenge is not None:
            # The phase's own bundle first, if it is this zip (the same zip may have been uploaded twice).
            ready = GroundTruthBundle.objects.filter(challenge=challenge, sha256=sha256,
                                                     status=GroundTruthBundle.Status.READY)
            stored = (ready.filter(phases__challenge=challenge, phases__slug=phase.slug).first()
                      or ready.order_by("-pk").first())
        if stored is not None:
            resolved.existing[index] = stored
            continue
        version = ""
        if dry_run:
            # A dry run uploads nothing: the zip is checked here with the scorer's own checks.
            try:
                version = load_ground_truth(path).version
            except InvalidGroundTruth as exc:
                errors.append(document.error((*where, "file"), f"the ground truth is invalid: {exc}"))
                continue
        resolved.uploads[index] = (path, ref.name or path.name, version)
    return resolved, errors


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _bundle_for(index: int, bundles: _Bundles, challenge: Challenge | None, document: Document,
                write: bool) -> GroundTruthBundle | None:
    """The bundle phase `index` is to score with (uploaded and checked now for a zip, when writing)."""
    if index in bundles.existing:
        return bundles.existing[index]
    if index not in bundles.uploads or not write:
        return None
    path, name, _ = bundles.uploads[index]
    assert challenge is not None  # written above when the file is applied
    if path in bundles.uploaded:
        return bundles.uploaded[path]
    with path.open("rb") as handle:
        bundle = ground_truth_create(challenge=challenge, name=name, file=handle, filename=path.name,
                                     queue_check=False)
    bundles.stored.append(bundle)
    bundle = ground_truth_check(bundle_id=bundle.pk)  # the worker's check, here and now
    if bundle.status != GroundTruthBundle.Status.READY:
        raise SpecErrors([document.error(("phases", index, "ground_truth", "file"),
                                         f"the ground truth is invalid: {bundle.message}")])
    bundles.existing[index] = bundles.uploaded[path] = bundle
    return bundle


# --- comparing and writing ----------------------------------------------------------------------


def shown(value: Any, zone: zoneinfo.ZoneInfo | None = None) -> str:
    """A value as the diff shows it (dates in the challenge's zone, with their offset, as the file writes them)."""
    if value is None:
        return "(none)"
    if isinstance(value, dt.datetime):
        return value.astimezone(zone or dt.UTC).isoformat()
    if isinstance(value, dict):  # reported values: in board order (jsonb keeps its own order of keys)
        return str(in_board_order(value))
    if isinstance(value, str) and ("\n" in value or len(value) > 60):
        return f"({len(value)} characters of text)"
    return repr(value) if isinstance(value, str) else str(value)


def in_board_order(values: dict[str, Any]) -> dict[str, Any]:
    """{split: ...} with the splits in board order."""
    rank = {code: index for index, code in enumerate(SPLIT_ORDER)}
    return dict(sorted(values.items(), key=lambda item: rank.get(item[0], len(rank))))


def _save(obj: Any, by: AbstractBaseUser | None, **kwargs: Any) -> None:
    obj._history_user = by  # read by django-simple-history, which records the change
    obj.save(**kwargs)


def _challenge(spec: ChallengeFile, challenge: Challenge | None, by: AbstractBaseUser | None, plan: Plan,
               write: bool) -> Challenge | None:
    wanted = {model: getattr(spec.challenge, key) for model, key in CHALLENGE_FIELDS.items()}
    what = f"challenge {spec.challenge.slug}"
    if challenge is None:
        plan.changes.append(Change(what, "created"))
        if not write:
            return None
        challenge = Challenge(slug=spec.challenge.slug, **wanted)
        challenge.full_clean()
        _save(challenge, by)
        return challenge
    diff = [(CHALLENGE_FIELDS[name], shown(getattr(challenge, name)), shown(value))
            for name, value in wanted.items() if getattr(challenge, name) != value]
    if diff:
        plan.changes.append(Change(what, "changed", diff))
        if write:
            for name, value in wanted.items():
                setattr(challenge, name, value)
            _save(challenge, by)
    return challenge


def _hosts(spec: ChallengeFile, challenge: Challenge | None, users: dict[str, AbstractBaseUser],
           by: AbstractBaseUser | None, plan: Plan, write: bool) -> None:
    current = ({h.user.get_username(): h for h in Host.objects.filter(challenge=challenge).select_related("user")}
               if challenge is not None else {})
    wanted = {host.username: host.role for host in spec.hosts or []}
    removed = sorted(set(current) - set(wanted))
    for name in removed:
        plan.changes.append(Change(f"host {name}", "removed", note=current[name].role))
    sets = []
    for name, role in wanted.items():
        if name not in current:
            plan.changes.append(Change(f"host {name}", "created", note=role))
            sets.append(name)
        elif current[name].role != role:
            plan.changes.append(Change(f"host {name}", "changed", [("role", current[name].role, role)]))
            sets.append(name)
    if not write or challenge is None:
        return
    # The acting user's own row last: an owner who steps down keeps the right to finish the list.
    acting = by.get_username() if by is not None else None
    for name in removed:
        if name != acting:
            host_remove(challenge=challenge, user=current[name].user, by=by)
    for name in sorted(sets, key=lambda n: n == acting):
        host_set(challenge=challenge, user=users[name], role=wanted[name], by=by)
    if acting in removed:
        host_remove(challenge=challenge, user=current[acting].user, by=by)


def _phase_values(spec: PhaseSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "order": spec.order, "starts_at": spec.opens,
            "ends_at": spec.closes, "accepts_submissions": spec.accepts_submissions,
            "max_per_day": spec.quota.per_day, "max_total": spec.quota.total,
            "quota_counts_failed": spec.quota.counts_failed, "visibility": spec.visibility,
            "reveal_at": spec.reveal_at, "primary_metric": spec.primary_metric, "ranking_rule": spec.ranking_rule,
            "show_expression_details": spec.show_expression_details,
            "bootstrap_samples": spec.statistics.bootstrap_samples, "tie_level": spec.statistics.tie_level,
            "min_bucket_size": spec.statistics.min_bucket_size, "ladder": spec.ladder, "ladder_step": spec.ladder_step,
            "requires_terms": spec.requires_terms}


def _bundle_label(bundle: GroundTruthBundle | None) -> str:
    return "(none)" if bundle is None else f"{bundle.name!r} {bundle.version[:12]}"


def _phase(spec: PhaseSpec, phase: Phase | None, challenge: Challenge | None, bundle: GroundTruthBundle | None,
           upload: tuple[Path, str, str] | None, by: AbstractBaseUser | None, zone: zoneinfo.ZoneInfo, plan: Plan,
           write: bool) -> None:
    what = f"phase {spec.slug}"
    wanted = _phase_values(spec)
    incoming = _bundle_label(bundle) if bundle is not None else (
        f"{upload[1]!r} {upload[2][:12]} (uploaded from {upload[0].name})" if upload is not None else None)
    if phase is None:
        fields = [("ground_truth", "(none)", incoming)] if incoming else []
        plan.changes.append(Change(what, "created", fields))
        if write and challenge is not None:
            phase = phase_create(challenge=challenge, slug=spec.slug, by=by, **wanted)
            phase_set_splits(phase=phase, codes=list(spec.splits))
            if bundle is not None:
                phase_set_ground_truth(phase=phase, bundle=bundle, by=by)
        if spec.reported:
            _reported(spec, phase, plan, write)
        return
    diff = [(PHASE_KEYS.get(name, name), shown(getattr(phase, name), zone), shown(value, zone))
            for name, value in wanted.items() if getattr(phase, name) != value]
    splits = [s.code for s in phase.splits.all()] or list(SPLIT_ORDER)  # no rows: all four (phase_boards)
    if splits != list(spec.splits):
        diff.append(("splits", ", ".join(splits) or "(none)", ", ".join(spec.splits)))
    note = ""
    switching = spec.ground_truth is not None and (upload is not None or bundle is not None
                                                   and bundle.pk != phase.ground_truth_id)
    if switching:
        diff.append(("ground_truth", _bundle_label(phase.ground_truth), incoming or ""))
        version = bundle.version if bundle is not None else upload[2] if upload is not None else ""
        stale = stale_submissions(phase=phase, version=version).count()
        note = f"{stale} submission(s) to rescore against the new ground truth"
    if diff:
        plan.changes.append(Change(what, "changed", diff, note=note))
    if write and diff:
        for name, value in wanted.items():
            setattr(phase, name, value)
        _save(phase, by)  # post_save rebuilds its boards (boards.py), once, at the end of the apply
        phase_set_splits(phase=phase, codes=list(spec.splits))
        if switching and bundle is not None:
            phase_set_ground_truth(phase=phase, bundle=bundle, by=by)
    if spec.reported is not None:
        _reported(spec, phase, plan, write)


def _reported(spec: PhaseSpec, phase: Phase | None, plan: Plan, write: bool) -> None:
    rows = [Reported(method=r.method, source_url=r.source, citation=r.citation, note=r.note, values=r.values)
            for r in spec.reported or []]
    current = {r.method: r for r in ReportedResult.objects.filter(phase=phase)} if phase is not None else {}
    wanted = {r.method: r for r in rows}
    for method in sorted(set(current) - set(wanted)):
        plan.changes.append(Change(f"reported {spec.slug} / {method}", "removed"))
    for method, row in wanted.items():
        old = current.get(method)
        if old is None:
            plan.changes.append(Change(f"reported {spec.slug} / {method}", "created"))
            continue
        diff = [(key, shown(getattr(old, attr)), shown(getattr(row, attr)))
                for key, attr in (("source", "source_url"), ("citation", "citation"), ("note", "note"),
                                  ("values", "values")) if getattr(old, attr) != getattr(row, attr)]
        if diff:
            plan.changes.append(Change(f"reported {spec.slug} / {method}", "changed", diff))
    if write and phase is not None:
        reported_sync(phase=phase, results=rows)
