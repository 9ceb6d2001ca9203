"""Writes for large uploads: start (part URLs), receive a part (without S3), complete, abort, clean up.

With S3 the client sends each part straight to the bucket through presigned `UploadPart` URLs of a
multipart upload; without S3 the part URLs point at this server (signed, so clients that send no
credentials with the parts — the evalai CLI — still work) and the parts are kept under VAR_DIR
until completion. Either way, completion verifies the object (it exists, has the declared size,
the sha256 the client sent, and is a zip) before a submission is created and quota is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.files import File
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from leaderboard.challenges.models import Phase
from leaderboard.challenges.services import file_sha256
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, NotFound

from .models import Submission, Upload
from .services import (
    NOT_A_ZIP,
    ZIP_MAGIC,
    check_method_fields,
    check_upload_size,
    submission_admit,
    submission_check_quota,
    submission_insert,
)

MAX_PARTS = 10_000  # the S3 limit
UPLOAD_LIFETIME = dt.timedelta(hours=24)
_SIGNER_SALT = "egomask.upload-part"


@dataclasses.dataclass(frozen=True)
class PartTarget:
    part_number: int
    url: str  # absolute for S3; a path on this server otherwise (the API layer makes it absolute)


@dataclasses.dataclass(frozen=True)
class UploadTicket:
    upload: Upload
    parts: tuple[PartTarget, ...]
    direct_to_s3: bool


def _storage():  # type: ignore[no-untyped-def]
    return Submission._meta.get_field("file").storage


def _s3(storage: Any) -> tuple[Any, str, Any] | None:
    """(boto3 client, bucket, key function) when private storage is S3, else None."""
    from storages.backends.s3 import S3Storage
    from storages.utils import clean_name

    if not isinstance(storage, S3Storage):
        return None
    return (storage.connection.meta.client, storage.bucket_name,
            lambda name: storage._normalize_name(clean_name(name)))


def _parts_dir(upload: Upload) -> Path:
    return Path(settings.VAR_DIR) / "uploads" / str(upload.pk)


def part_signature(upload_id: uuid.UUID | str, part_number: int) -> str:
    return signing.TimestampSigner(salt=_SIGNER_SALT).sign(f"{upload_id}:{part_number}")


def upload_start(*, phase: Phase, user: AbstractBaseUser, filename: str = "", size: int | None = None,
                 parts: int = 1, is_baseline: bool = False, now: dt.datetime | None = None) -> UploadTicket:
    """Open an upload in `parts` parts. Refuses at once what completion would refuse (team, dates,
    quota, size), so nobody uploads gigabytes for nothing; the quota is only used at completion."""
    now = now or timezone.now()
    team = submission_admit(phase=phase, user=user, is_baseline=is_baseline, now=now)
    submission_check_quota(phase=phase, team=team, now=now)
    if size is not None:
        if size <= 0:
            raise ApplicationError("The file is empty.")
        check_upload_size(size)
    if not 1 <= parts <= MAX_PARTS:
        raise ApplicationError(f"The number of parts must be between 1 and {MAX_PARTS}.")
    upload = Upload(phase=phase, user=user, team=team, is_baseline=is_baseline, filename=filename[:255],
                    size=size, parts=parts, created_at=now, expires_at=now + UPLOAD_LIFETIME)
    upload.key = f"uploads/{phase.pk}/{upload.pk}.zip"
    s3 = _s3(_storage())
    if s3 is not None:
        client, bucket, key_of = s3
        upload.multipart_id = client.create_multipart_upload(Bucket=bucket, Key=key_of(upload.key),
                                                             ContentType="application/zip")["UploadId"]
        expires = int(UPLOAD_LIFETIME.total_seconds())
        targets = tuple(
            PartTarget(n, client.generate_presigned_url(
                "upload_part", ExpiresIn=expires,
                Params={"Bucket": bucket, "Key": key_of(upload.key), "UploadId": upload.multipart_id,
                        "PartNumber": n}))
            for n in range(1, parts + 1)
        )
    else:
        targets = tuple(
            PartTarget(n, reverse("api-upload-part", args=[upload.pk, n]) + "?sig=" + part_signature(upload.pk, n))
            for n in range(1, parts + 1)
        )
    upload.save()
    return UploadTicket(upload, targets, s3 is not None)


def upload_receive_part(*, upload_id: uuid.UUID | str, part_number: int, signature: str,
                        stream: IO[bytes]) -> str:
    """Store one part sent to this server (no S3); returns its ETag (quoted MD5, as S3 does)."""
    try:
        signed = signing.TimestampSigner(salt=_SIGNER_SALT).unsign(
            signature, max_age=UPLOAD_LIFETIME.total_seconds())
    except signing.BadSignature:
        raise NotAllowed("This upload link is not valid or has expired; start the upload again.") from None
    if signed != f"{upload_id}:{part_number}":
        raise NotAllowed("This upload link is not valid for this part.")
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None or upload.status != Upload.Status.PENDING:
        raise Conflict("This upload is no longer open; start the upload again.")
    folder = _parts_dir(upload)
    folder.mkdir(parents=True, exist_ok=True)
    already = sum(p.stat().st_size for p in folder.glob("*.part") if p.name != f"{part_number:05d}.part")
    limit = settings.SUBMISSION_MAX_BYTES - already
    digest, written = hashlib.md5(usedforsecurity=False), 0
    partial = folder / f"{part_number:05d}.part.tmp"
    with partial.open("wb") as target:
        while chunk := stream.read(1024 * 1024):
            written += len(chunk)
            if written > limit:
                target.close()
                partial.unlink()
                check_upload_size(settings.SUBMISSION_MAX_BYTES + 1)
            digest.update(chunk)
            target.write(chunk)
    partial.replace(folder / f"{part_number:05d}.part")
    return f'"{digest.hexdigest()}"'


def _owned(upload: Upload, user: AbstractBaseUser) -> None:
    if upload.user_id != user.pk and not user.is_staff:
        raise NotFound("No such upload.")
    if upload.status != Upload.Status.PENDING:
        # The submission id lets a client whose completion answer got lost find its submission.
        detail = {"status": upload.status, "submission_id": upload.submission_id}
        raise Conflict(f"This upload is already {upload.status}.", detail=detail)


def _missing_parts(upload: Upload, present: set[int]) -> list[int]:
    """Announced parts that never arrived. When no size was announced, a missing *last* part is
    tolerated: the evalai CLI announces int(size / part) + 1 parts, one too many when the size is
    an exact multiple of its part size (the sha256/zip checks still catch a truncated file)."""
    missing = sorted(set(range(1, upload.parts + 1)) - present)
    if upload.size is None and missing == [upload.parts] and upload.parts > 1:
        return []
    return missing


def _assemble(upload: Upload, etags: dict[int, str] | None) -> None:
    """Put the complete object at upload.key in private storage."""
    storage = _storage()
    s3 = _s3(storage)
    if s3 is not None:
        client, bucket, key_of = s3
        if etags is None:  # the client did not keep the ETags: ask S3 which parts it has
            listed = client.list_parts(Bucket=bucket, Key=key_of(upload.key), UploadId=upload.multipart_id)
            etags = {p["PartNumber"]: p["ETag"] for p in listed.get("Parts", [])}
        missing = _missing_parts(upload, set(etags))
        if missing:
            raise ApplicationError(f"The upload is incomplete: part(s) {missing[:10]} never arrived.",
                                   detail={"missing_parts": missing})
        try:
            client.complete_multipart_upload(
                Bucket=bucket, Key=key_of(upload.key), UploadId=upload.multipart_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]})
        except client.exceptions.ClientError as exc:
            raise ApplicationError(f"The storage refused to assemble the upload: {exc}") from None
        return
    folder = _parts_dir(upload)
    present = {n for n in range(1, upload.parts + 1) if (folder / f"{n:05d}.part").exists()}
    missing = _missing_parts(upload, present)
    if missing:
        raise ApplicationError(f"The upload is incomplete: part(s) {missing[:10]} never arrived.",
                               detail={"missing_parts": missing})
    with tempfile.TemporaryFile() as whole:
        for n in sorted(present):
            with (folder / f"{n:05d}.part").open("rb") as part:
                shutil.copyfileobj(part, whole, 1024 * 1024)
        whole.seek(0)
        stored = storage.save(upload.key, File(whole, name=Path(upload.key).name))
    if stored != upload.key:
        Upload.objects.filter(pk=upload.pk).update(key=stored)
        upload.key = stored
    shutil.rmtree(folder, ignore_errors=True)


def _verify(upload: Upload, sha256: str | None) -> tuple[str, int]:
    """(sha256, size) of the stored object, after checking it against what the client declared."""
    storage = _storage()
    if not storage.exists(upload.key):
        raise ApplicationError("The uploaded file is not in storage; start the upload again.")
    with storage.open(upload.key, "rb") as handle:
        if handle.read(4) not in ZIP_MAGIC:
            raise ApplicationError(NOT_A_ZIP)
        actual, size = file_sha256(handle)
    if upload.size is not None and size != upload.size:
        raise ApplicationError(f"The upload has {size} bytes, but {upload.size} were announced.",
                               detail={"size": size, "expected": upload.size})
    check_upload_size(size)
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
    now: dt.datetime | None = None,
) -> Submission:
    """Assemble and verify the upload, then create its submission (this is when quota is used).

    A damaged or refused upload is discarded (object deleted, upload aborted): nothing half-made
    stays behind, and the client can start again.
    """
    now = now or timezone.now()
    _owned(upload, user)
    method_name = check_method_fields(method_name=method_name, method_url=method_url, code_url=code_url)
    etags = None if parts is None else {int(p["PartNumber"]): str(p["ETag"]) for p in parts}
    # Claim the upload: of two simultaneous completions only one assembles it (the other must not
    # discard the object the first one's submission points at).
    if not Upload.objects.filter(pk=upload.pk, status=Upload.Status.PENDING).update(
            status=Upload.Status.COMPLETING):
        raise Conflict("This upload is already being completed or is no longer open.")
    try:
        team = submission_admit(phase=upload.phase, user=user, is_baseline=upload.is_baseline, now=now)
        _assemble(upload, etags)
        actual, size = _verify(upload, sha256)

        def point_at_object(submission: Submission) -> None:
            submission.file.name = upload.key

        with transaction.atomic():
            submission = submission_insert(
                phase=upload.phase, team=team, user=user, sha256=actual, size=size, now=now, store=point_at_object,
                method_name=method_name, method_description=method_description, method_url=method_url,
                code_url=code_url, is_public=is_public, is_baseline=upload.is_baseline)
            Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.COMPLETED, submission=submission)
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
    storage = _storage()
    s3 = _s3(storage)
    if s3 is not None and upload.multipart_id:
        client, bucket, key_of = s3
        # Already completed or aborted: fine, the object itself is deleted below.
        with contextlib.suppress(client.exceptions.ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key_of(upload.key), UploadId=upload.multipart_id)
    shutil.rmtree(_parts_dir(upload), ignore_errors=True)
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
