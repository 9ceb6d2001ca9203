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
from scoring import GroundTruth, InvalidGroundTruth, InvalidSubmission, Limits, load_ground_truth
from scoring.archive import extract

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
    """Load the bundle as a worker would and record its version and size, or why it is invalid."""
    bundle = GroundTruthBundle.objects.get(pk=bundle_id)
    try:
        gt = ground_truth_load(bundle=bundle)
    except ApplicationError as exc:
        bundle.status, bundle.message = GroundTruthBundle.Status.INVALID, exc.message
    except OSError as exc:  # the stored file is missing or unreadable
        bundle.status, bundle.message = GroundTruthBundle.Status.INVALID, f"The stored file cannot be read: {exc}"
    else:
        bundle.status, bundle.message, bundle.version = GroundTruthBundle.Status.READY, "", gt.version
        bundle.summary = {
            split: {
                "videos": sum(1 for v in gt.videos.values() if v.split == split),
                "expressions": sum(1 for _ in gt.expressions((split,))),
            }
            for split in gt.splits
        }
    bundle.save(update_fields=["status", "message", "version", "summary"])
    return bundle


def ground_truth_load(*, bundle: GroundTruthBundle) -> GroundTruth:
    """The parsed ground truth of a bundle. Workers only: it downloads and caches the tree."""
    try:
        return _load_cached(bundle.sha256, bundle.file.name)
    except (InvalidGroundTruth, InvalidSubmission) as exc:
        raise ApplicationError(f"The ground truth {bundle.name!r} is invalid: {exc}") from None


@functools.lru_cache(maxsize=4)
def _load_cached(sha256: str, storage_name: str) -> GroundTruth:
    root = Path(settings.GROUND_TRUTH_CACHE_DIR) / sha256
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        storage = GroundTruthBundle._meta.get_field("file").storage
        with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
            archive = Path(tmp) / "gt.zip"
            with storage.open(storage_name, "rb") as source, archive.open("wb") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
            with archive.open("rb") as handle:
                actual, _ = file_sha256(handle)
            if actual != sha256:
                raise InvalidGroundTruth(f"the stored file's sha256 is {actual}, expected {sha256}")
            unpacked = extract(archive, Path(tmp) / "tree", Limits(max_total_bytes=64 * 1024**3, max_ratio=10_000))
            try:
                unpacked.rename(root)  # atomic: a half-extracted tree is never visible
            except OSError:
                if not root.exists():  # another worker may have finished first; that is fine
                    raise
    return load_ground_truth(_tree_root(root))


def _tree_root(root: Path) -> Path:
    """The folder holding the meta files: the extraction root or its single wrapping folder."""
    if (root / "meta_expressions.json").exists() or (root / "subset").is_dir():
        return root
    children = [p for p in root.iterdir() if p.is_dir()]
    return children[0] if len(children) == 1 else root
