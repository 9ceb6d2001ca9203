"""Writes for challenges, phases and ground truth."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import transaction

from leaderboard.errors import ApplicationError, NotAllowed
from leaderboard.lib.files import file_sha256
from scoring import diagnostics
from scoring import GroundTruth, InvalidGroundTruth, load_ground_truth
from scoring.example import public_inputs

from .models import SPLIT_ORDER, Challenge, GroundTruthBundle, Host, Phase, PhaseSplit
from .permissions import Can, forget_roles, organizer_can

log = logging.getLogger(__name__)


def phase_ensure_splits(*, phase: Phase) -> None:
    """Every phase has the three split boards and the overall board."""
    for order, code in enumerate(SPLIT_ORDER):
        PhaseSplit.objects.get_or_create(phase=phase, code=code, defaults={"order": order})


def phase_create(*, challenge: Challenge, slug: str, name: str, by: AbstractBaseUser | None = None,
                 **fields: object) -> Phase:
    """A new phase of the challenge with its boards (`by`: who made it, for the audit log)."""
    with transaction.atomic():
        phase = Phase(challenge=challenge, slug=slug, name=name, **fields)
        phase._history_user = by  # type: ignore[attr-defined]  # read by django-simple-history
        phase.save()
        phase_ensure_splits(phase=phase)
    return phase


def phase_set_splits(*, phase: Phase, codes: list[str]) -> None:
    """The phase's boards are exactly `codes`, in that order (a board removed keeps its scores: they are per
    split of each submission, and come back with the board)."""
    with transaction.atomic():
        PhaseSplit.objects.filter(phase=phase).exclude(code__in=codes).delete()
        for order, code in enumerate(codes):
            split, created = PhaseSplit.objects.get_or_create(phase=phase, code=code, defaults={"order": order})
            if not created and split.order != order:
                split.order = order
                split.save(update_fields=["order"])


def host_set(*, challenge: Challenge, user: AbstractBaseUser, role: str, by: AbstractBaseUser | None) -> Host:
    """Make `user` a host of the challenge with `role` (added, or their role changed). Needs Can.MANAGE_HOSTS."""
    if not organizer_can(by, challenge, Can.MANAGE_HOSTS):
        raise NotAllowed(f"Only the owners of {challenge.slug} choose its hosts.")
    if role not in Host.Role.values:
        raise ApplicationError(f"{role!r} is not a host role (one of {', '.join(Host.Role.values)}).")
    with transaction.atomic():
        host = Host.objects.select_for_update().filter(challenge=challenge, user=user).first()
        if host is None:
            host = Host(challenge=challenge, user=user, role=role, added_by=by)
        elif host.role == role:
            return host
        host.role = role
        host._history_user = by  # type: ignore[attr-defined]
        host.save()
    forget_roles(user)
    forget_roles(by)
    return host


def host_remove(*, challenge: Challenge, user: AbstractBaseUser, by: AbstractBaseUser | None) -> bool:
    """`user` no longer runs the challenge; False when they did not. Needs Can.MANAGE_HOSTS."""
    if not organizer_can(by, challenge, Can.MANAGE_HOSTS):
        raise NotAllowed(f"Only the owners of {challenge.slug} choose its hosts.")
    host = Host.objects.filter(challenge=challenge, user=user).first()
    if host is None:
        return False
    host._history_user = by  # type: ignore[attr-defined]
    host.delete()
    forget_roles(user)
    forget_roles(by)
    return True


def ground_truth_create(*, challenge: Challenge, name: str, file: IO[bytes], filename: str = "ground-truth.zip",
                        queue_check: bool = True) -> GroundTruthBundle:
    """Store a ground-truth zip privately; a worker checks it (see ground_truth_check). `queue_check` False: the
    caller runs ground_truth_check itself, now (the commands)."""
    sha256, _ = file_sha256(file)
    bundle = GroundTruthBundle(challenge=challenge, name=name, sha256=sha256)
    bundle.file.save(filename, File(file, name=filename), save=False)
    bundle.save()
    if not queue_check:
        return bundle
    from .tasks import check_ground_truth  # tasks import services: import here to avoid a cycle

    transaction.on_commit(lambda: check_ground_truth.delay(bundle.pk))
    return bundle


def ground_truth_request_check(*, bundle: GroundTruthBundle) -> GroundTruthBundle:
    """Mark a bundle pending and queue a worker check (the web process never loads ground truth)."""
    from .tasks import check_ground_truth

    GroundTruthBundle.objects.filter(pk=bundle.pk).update(status=GroundTruthBundle.Status.PENDING, message="")
    pk = bundle.pk
    transaction.on_commit(lambda: check_ground_truth.delay(pk))
    bundle.refresh_from_db()
    return bundle


def ground_truth_check(*, bundle_id: int) -> GroundTruthBundle:
    """Load the bundle as a worker would and record its version, its size and its public inputs (what
    participants may see: videos, frames, expressions, no mask), or why it is invalid."""
    bundle = GroundTruthBundle.objects.get(pk=bundle_id)
    try:
        gt = ground_truth_load(bundle=bundle)
    except ApplicationError as exc:
        bundle.status, bundle.message = GroundTruthBundle.Status.INVALID, exc.message
    except OSError as exc:  # the stored file is missing or unreadable
        bundle.status, bundle.message = GroundTruthBundle.Status.INVALID, f"The stored file cannot be read: {exc}"
    else:
        bundle.status, bundle.message, bundle.version = GroundTruthBundle.Status.READY, " ".join(gt.notes), gt.version
        bundle.summary = {
            split: {
                "videos": sum(1 for v in gt.videos.values() if v.split == split),
                "expressions": sum(1 for _ in gt.expressions((split,))),
            }
            for split in gt.splits
        }
        bundle.public_inputs = public_inputs(gt)
        bundle.traits = diagnostics.traits(gt).as_dict()
    bundle.save(update_fields=["status", "message", "version", "summary", "public_inputs", "traits"])
    return bundle


def ground_truth_load(*, bundle: GroundTruthBundle) -> GroundTruth:
    """The parsed ground truth of a bundle. Workers only: it downloads the zip once and keeps the parsed
    masks in GROUND_TRUTH_CACHE_DIR, so a new worker process loads a version in a fraction of a second."""
    try:
        return _load_cached(bundle.sha256, bundle.file.name)
    except InvalidGroundTruth as exc:
        raise ApplicationError(f"The ground truth {bundle.name!r} is invalid: {exc}") from None


@functools.lru_cache(maxsize=4)
def _load_cached(sha256: str, storage_name: str) -> GroundTruth:
    folder = Path(settings.GROUND_TRUTH_CACHE_DIR)
    archive = folder / f"{sha256}.zip"
    if not archive.exists():
        folder.mkdir(parents=True, exist_ok=True)
        storage = GroundTruthBundle._meta.get_field("file").storage
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as target:
            partial = Path(target.name)
            try:
                with storage.open(storage_name, "rb") as source:
                    shutil.copyfileobj(source, target, 1024 * 1024)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        with partial.open("rb") as handle:
            actual, _ = file_sha256(handle)
        if actual != sha256:
            partial.unlink(missing_ok=True)
            raise InvalidGroundTruth(f"the stored file's sha256 is {actual}, expected {sha256}")
        partial.replace(archive)  # atomic: a worker never reads a half-copied zip
    return load_ground_truth(archive, cache=folder)
