"""Writes for challenges, phases and ground truth."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.db import transaction

from leaderboard.errors import ApplicationError
from leaderboard.lib.files import file_sha256
from scoring import GroundTruth, InvalidGroundTruth, load_ground_truth
from scoring.example import public_inputs

from .models import SPLIT_ORDER, Challenge, GroundTruthBundle, Phase, PhaseSplit

log = logging.getLogger(__name__)


def phase_ensure_splits(*, phase: Phase) -> None:
    """Every phase has the three split boards and the overall board."""
    for order, code in enumerate(SPLIT_ORDER):
        PhaseSplit.objects.get_or_create(phase=phase, code=code, defaults={"order": order})


def phase_create(*, challenge: Challenge, slug: str, name: str, **fields: object) -> Phase:
    with transaction.atomic():
        phase = Phase.objects.create(challenge=challenge, slug=slug, name=name, **fields)
        phase_ensure_splits(phase=phase)
    return phase


def ground_truth_create(*, challenge: Challenge, name: str, file: IO[bytes], filename: str = "ground-truth.zip"
                        ) -> GroundTruthBundle:
    """Store a ground-truth zip privately; a worker checks it (see ground_truth_check)."""
    sha256, _ = file_sha256(file)
    bundle = GroundTruthBundle(challenge=challenge, name=name, sha256=sha256)
    bundle.file.save(filename, File(file, name=filename), save=False)
    bundle.save()
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
    bundle.save(update_fields=["status", "message", "version", "summary", "public_inputs"])
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
