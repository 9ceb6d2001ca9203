"""Where the parts of a large upload go until it is complete: one small interface, two stores.

- S3Parts: a multipart upload in the bucket; the client PUTs each part straight to S3 through a
  presigned `UploadPart` URL, and S3 assembles the object.
- LocalParts: part files under VAR_DIR/uploads/<upload id>/, sent to this server through URLs
  signed like presigned ones (so clients that send parts without credentials, such as the evalai
  CLI, still work), assembled into private storage at completion.

uploads.py uses only `parts_store()` and the methods of PartsStore; which store it gets follows
from the private storage (S3 or not), as healthchecks hides S3 behind hc/lib/s3.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import Storage
from django.urls import reverse

from leaderboard.errors import ApplicationError, NotAllowed

from .admission import check_size
from .models import Submission, Upload

UPLOAD_LIFETIME_SECONDS = 24 * 3600
_SIGNER_SALT = "egomask.upload-part"
_CHUNK = 1024 * 1024


class PartsStore(Protocol):
    """The parts of uploads on their way into private storage."""

    direct: bool  # the client sends the parts to the storage itself, not through this server

    def begin(self, upload: Upload) -> None:
        """Prepare to receive the upload's parts (sets what the store needs on the unsaved upload)."""

    def part_url(self, upload: Upload, part_number: int) -> str:
        """Where the client PUTs one part: absolute for S3, a path on this server otherwise."""

    def received(self, upload: Upload, etags: dict[int, str] | None) -> dict[int, str]:
        """The parts that arrived, by number, with their ETags (the client's list when it kept one)."""

    def assemble(self, upload: Upload, parts: dict[int, str]) -> str:
        """Put the whole file in private storage from these parts; returns its name there."""

    def discard(self, upload: Upload) -> None:
        """Forget whatever parts the upload left (no error if there are none)."""


def private_files() -> Storage:
    """The storage submissions are kept in (the same object the Submission.file field uses)."""
    return Submission._meta.get_field("file").storage


def parts_store() -> PartsStore:
    """The store that goes with the private storage: S3Parts on S3, LocalParts otherwise."""
    from storages.backends.s3 import S3Storage  # django-storages loads boto3: only when asked

    storage = private_files()
    return S3Parts(storage) if isinstance(storage, S3Storage) else LocalParts(storage)


class S3Parts:
    direct = True

    def __init__(self, storage: Any) -> None:
        from storages.utils import clean_name

        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        self._key = lambda name: storage._normalize_name(clean_name(name))

    def begin(self, upload: Upload) -> None:
        upload.multipart_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._key(upload.key), ContentType="application/zip")["UploadId"]

    def part_url(self, upload: Upload, part_number: int) -> str:
        return self.client.generate_presigned_url(
            "upload_part", ExpiresIn=UPLOAD_LIFETIME_SECONDS,
            Params={"Bucket": self.bucket, "Key": self._key(upload.key), "UploadId": upload.multipart_id,
                    "PartNumber": part_number})

    def received(self, upload: Upload, etags: dict[int, str] | None) -> dict[int, str]:
        if etags is not None:
            return etags
        # The client did not keep the ETags: ask S3 which parts it has.
        listed = self.client.list_parts(Bucket=self.bucket, Key=self._key(upload.key), UploadId=upload.multipart_id)
        return {p["PartNumber"]: p["ETag"] for p in listed.get("Parts", [])}

    def assemble(self, upload: Upload, parts: dict[int, str]) -> str:
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self._key(upload.key), UploadId=upload.multipart_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]})
        except self.client.exceptions.ClientError as exc:
            raise ApplicationError(f"The storage refused to assemble the upload: {exc}") from None
        return upload.key

    def discard(self, upload: Upload) -> None:
        if upload.multipart_id:
            # Already completed or aborted: fine, uploads.py deletes the object itself.
            with contextlib.suppress(self.client.exceptions.ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(upload.key),
                                                   UploadId=upload.multipart_id)


def part_signature(upload_id: uuid.UUID | str, part_number: int) -> str:
    return signing.TimestampSigner(salt=_SIGNER_SALT).sign(f"{upload_id}:{part_number}")


class LocalParts:
    direct = False

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    def folder(upload: Upload) -> Path:
        return Path(settings.VAR_DIR) / "uploads" / str(upload.pk)

    def begin(self, upload: Upload) -> None:
        pass  # the folder is made by the first part

    def part_url(self, upload: Upload, part_number: int) -> str:
        return reverse("api-upload-part", args=[upload.pk, part_number]) + "?sig=" + part_signature(
            upload.pk, part_number)

    @staticmethod
    def check_signature(*, upload_id: uuid.UUID | str, part_number: int, signature: str) -> None:
        """Refuse a part URL this server did not sign for this part, or signed too long ago."""
        try:
            signed = signing.TimestampSigner(salt=_SIGNER_SALT).unsign(signature, max_age=UPLOAD_LIFETIME_SECONDS)
        except signing.BadSignature:
            raise NotAllowed("This upload link is not valid or has expired; start the upload again.") from None
        if signed != f"{upload_id}:{part_number}":
            raise NotAllowed("This upload link is not valid for this part.")

    def receive(self, upload: Upload, part_number: int, stream: IO[bytes]) -> str:
        """Store one part; returns its ETag (quoted MD5, as S3 does). The parts together stay under the limit."""
        folder = self.folder(upload)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{part_number:05d}.part"
        already = sum(p.stat().st_size for p in folder.glob("*.part") if p.name != name)
        limit = settings.SUBMISSION_MAX_BYTES - already
        digest, written = hashlib.md5(usedforsecurity=False), 0
        partial = folder / f"{name}.tmp"
        with partial.open("wb") as target:
            while chunk := stream.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    target.close()
                    partial.unlink()
                    check_size(size=settings.SUBMISSION_MAX_BYTES + 1)
                digest.update(chunk)
                target.write(chunk)
        partial.replace(folder / name)
        return f'"{digest.hexdigest()}"'

    def received(self, upload: Upload, etags: dict[int, str] | None) -> dict[int, str]:
        # The files on disk are the truth here, whatever list the client kept.
        folder = self.folder(upload)
        return {n: "" for n in range(1, upload.parts + 1) if (folder / f"{n:05d}.part").exists()}

    def assemble(self, upload: Upload, parts: dict[int, str]) -> str:
        folder = self.folder(upload)
        with tempfile.TemporaryFile() as whole:
            for n in sorted(parts):
                with (folder / f"{n:05d}.part").open("rb") as part:
                    shutil.copyfileobj(part, whole, _CHUNK)
            whole.seek(0)
            stored = self.storage.save(upload.key, File(whole, name=Path(upload.key).name))
        shutil.rmtree(folder, ignore_errors=True)
        return stored

    def discard(self, upload: Upload) -> None:
        shutil.rmtree(self.folder(upload), ignore_errors=True)
