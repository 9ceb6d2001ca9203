"""Writes for large uploads: start (part URLs), receive a part (without S3), complete, abort, clean up.

The parts go to a parts store (parts.py: S3 multipart, or part files on this server). Completion
assembles them, verifies the object (it exists, has the declared size, the sha256 the client sent,
and is a non-empty zip) and runs the same admission as a one-POST upload before a submission is
created and quota is used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from leaderboard.challenges.models import Phase
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, NotFound
from leaderboard.lib.files import file_sha256

from . import admission
from .models import Submission, Upload
from .parts import UPLOAD_LIFETIME_SECONDS, LocalParts, parts_store, private_files
from .selectors import upload_is_owned_by

MAX_PARTS = 10_000  # the S3 limit
UPLOAD_LIFETIME = dt.timedelta(seconds=UPLOAD_LIFETIME_SECONDS)


@dataclasses.dataclass(frozen=True)
class PartTarget:
    part_number: int
    url: str  # absolute for S3; a path on this server otherwise (the API layer makes it absolute)


@dataclasses.dataclass(frozen=True)
class UploadTicket:
    upload: Upload
    parts: tuple[PartTarget, ...]
    direct_to_s3: bool


def upload_start(*, phase: Phase, user: AbstractBaseUser, filename: str = "", size: int | None = None,
                 parts: int = 1, is_baseline: bool = False, now: dt.datetime | None = None) -> UploadTicket:
    """Open an upload in `parts` parts. Refuses at once what completion would refuse (team, dates,
    quota, size), so nobody uploads gigabytes for nothing; the quota is only used at completion."""
    now = now or timezone.now()
    team = admission.submission_admit(phase=phase, user=user, is_baseline=is_baseline, now=now)
    admission.check_quota(phase=phase, team=team, now=now)
    if size is not None:
        if size <= 0:
            name = f"The file {filename!r} is" if filename else "The file is"
            raise ApplicationError(f"{name} empty.")
        admission.check_size(size=size)
    if not 1 <= parts <= MAX_PARTS:
        raise ApplicationError(f"The number of parts must be between 1 and {MAX_PARTS}.")
    upload = Upload(phase=phase, user=user, team=team, is_baseline=is_baseline, filename=filename[:255],
                    size=size, parts=parts, created_at=now, expires_at=now + UPLOAD_LIFETIME)
    upload.key = f"uploads/{phase.pk}/{upload.pk}.zip"
    store = parts_store()
    store.begin(upload)
    targets = tuple(PartTarget(n, store.part_url(upload, n)) for n in range(1, parts + 1))
    upload.save()
    return UploadTicket(upload, targets, store.direct)


def upload_receive_part(*, upload_id: uuid.UUID | str, part_number: int, signature: str,
                        stream: IO[bytes]) -> str:
    """Store one part sent to this server (no S3); returns its ETag (quoted MD5, as S3 does)."""
    LocalParts.check_signature(upload_id=upload_id, part_number=part_number, signature=signature)
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None or upload.status != Upload.Status.PENDING:
        raise Conflict("This upload is no longer open; start the upload again.")
    return LocalParts(private_files()).receive(upload, part_number, stream)


def _owned(upload: Upload, user: AbstractBaseUser) -> None:
    """The upload is the user's and still open, or raise (a stranger's is answered as missing)."""
    if not upload_is_owned_by(upload=upload, user=user):
        raise NotFound("No such upload.")
    if upload.status != Upload.Status.PENDING:
        # The submission id lets a client whose completion answer got lost find its submission.
        detail = {"status": upload.status, "submission_id": upload.submission_id}
        raise Conflict(f"This upload is already {upload.status}.", detail=detail)


def _missing_parts(upload: Upload, present: Iterable[int], last_part_optional: bool) -> list[int]:
    """Announced parts that never arrived. With `last_part_optional` (and no size announced, so the
    size check cannot catch a shortfall) a missing last part is not missing: the evalai adapter
    asks for that, see evalai/views.py."""
    missing = sorted(set(range(1, upload.parts + 1)) - set(present))
    if last_part_optional and upload.size is None and missing == [upload.parts] and upload.parts > 1:
        return []
    return missing


def _assemble(upload: Upload, etags: dict[int, str] | None, last_part_optional: bool) -> None:
    """Put the complete object at upload.key in private storage."""
    store = parts_store()
    parts = store.received(upload, etags)
    missing = _missing_parts(upload, parts, last_part_optional)
    if missing:
        raise ApplicationError(f"The upload is incomplete: part(s) {missing[:10]} never arrived.",
                               detail={"missing_parts": missing})
    stored = store.assemble(upload, parts)
    if stored != upload.key:
        Upload.objects.filter(pk=upload.pk).update(key=stored)
        upload.key = stored


def _verify(upload: Upload, sha256: str | None) -> tuple[str, int]:
    """(sha256, size) of the stored object, after checking it against what the client declared."""
    storage = private_files()
    if not storage.exists(upload.key):
        raise ApplicationError("The uploaded file is not in storage; start the upload again.")
    with storage.open(upload.key, "rb") as handle:
        admission.check_zip(handle=handle, filename=upload.filename)
        actual, size = file_sha256(handle)
    if upload.size is not None and size != upload.size:
        raise ApplicationError(f"The upload has {size} bytes, but {upload.size} were announced.",
                               detail={"size": size, "expected": upload.size})
    admission.check_size(size=size)
    if sha256 and sha256.lower() != actual:
        raise ApplicationError("The uploaded file's sha256 does not match the one sent; it was damaged on the "
                               "way. Upload it again.", detail={"sha256": actual, "expected": sha256})
    return actual, size


def upload_complete(
    *,
    upload: Upload,
    user: AbstractBaseUser,
    method_name: str,
    sha256: str | None = None,
    parts: Iterable[dict[str, Any]] | None = None,
    method_description: str = "",
    method_url: str = "",
    code_url: str = "",
    is_public: bool = True,
    last_part_optional: bool = False,
    now: dt.datetime | None = None,
) -> Submission:
    """Assemble and verify the upload, then create its submission (this is when quota is used).

    A damaged or refused upload is discarded (object deleted, upload aborted): nothing half-made
    stays behind, and the client can start again. `last_part_optional`: see _missing_parts.
    Completing it again with the same sha256 (an answer lost on the way) returns its submission,
    `replayed`; so does the upload of a file the team submitted moments ago, whose copy is then discarded.
    """
    now = now or timezone.now()
    if (upload.status == Upload.Status.COMPLETED and upload.submission is not None
            and upload.user_id == user.pk and (sha256 is None or sha256.lower() == upload.submission.file_sha256)):
        upload.submission.replayed = True
        return upload.submission
    _owned(upload, user)
    if upload.user_id != user.pk:
        # An organizer may see and abort anyone's upload, but a submission is made for whoever completes
        # it: refused here, before the claim, so that the uploader's parts are not discarded.
        raise NotAllowed("Only the person who started this upload can complete it.")
    method_name = admission.check_method_fields(method_name=method_name, method_url=method_url, code_url=code_url)
    etags = None if parts is None else {int(p["PartNumber"]): str(p["ETag"]) for p in parts}
    # Claim the upload: of two simultaneous completions only one assembles it (the other must not
    # discard the object the first one's submission points at).
    if not Upload.objects.filter(pk=upload.pk, status=Upload.Status.PENDING).update(
            status=Upload.Status.COMPLETING):
        raise Conflict("This upload is already being completed or is no longer open.")
    try:
        team = admission.submission_admit(phase=upload.phase, user=user, is_baseline=upload.is_baseline, now=now)
        _assemble(upload, etags, last_part_optional)
        actual, size = _verify(upload, sha256)

        def point_at_object(submission: Submission) -> None:
            submission.file.name = upload.key

        with transaction.atomic():
            submission = admission.submission_insert(
                phase=upload.phase, team=team, user=user, sha256=actual, size=size, now=now, store=point_at_object,
                method_name=method_name, method_description=method_description, method_url=method_url,
                code_url=code_url, is_public=is_public, is_baseline=upload.is_baseline)
            if not submission.replayed:
                Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.COMPLETED, submission=submission)
        if submission.replayed:
            upload_discard(upload=upload)  # a second copy of a file that is already a submission
    except ApplicationError:
        upload_discard(upload=upload)
        raise
    except BaseException:
        # Not the upload's fault (storage or database trouble, an interrupted worker): let the
        # client try the completion again.
        Upload.objects.filter(pk=upload.pk, status=Upload.Status.COMPLETING).update(status=Upload.Status.PENDING)
        raise
    upload.refresh_from_db()
    return submission


def upload_abort(*, upload: Upload, user: AbstractBaseUser) -> None:
    """The client gives up (Ctrl-C): drop the parts and the upload; nothing is left on the server."""
    _owned(upload, user)
    upload_discard(upload=upload)


def upload_discard(*, upload: Upload) -> None:
    """Delete whatever an unfinished upload left in storage and mark it aborted."""
    parts_store().discard(upload)
    storage = private_files()
    if storage.exists(upload.key):
        storage.delete(upload.key)
    Upload.objects.filter(pk=upload.pk, status__in=[Upload.Status.PENDING, Upload.Status.COMPLETING]).update(
        status=Upload.Status.ABORTED)


def uploads_cleanup(*, now: dt.datetime | None = None) -> int:
    """Discard pending uploads past their lifetime (the periodic task runs this)."""
    now = now or timezone.now()
    stale = list(Upload.objects.filter(status__in=[Upload.Status.PENDING, Upload.Status.COMPLETING],
                                       expires_at__lt=now))
    for upload in stale:
        upload_discard(upload=upload)
    return len(stale)
