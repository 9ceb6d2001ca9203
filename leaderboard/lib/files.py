"""Small helpers for file objects."""

from __future__ import annotations

import hashlib
from typing import IO

CHUNK = 1024 * 1024


def file_sha256(handle: IO[bytes]) -> tuple[str, int]:
    """(sha256 hex, size) of a file object, read in chunks from the start; leaves it at the start."""
    digest = hashlib.sha256()
    size = 0
    handle.seek(0)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return digest.hexdigest(), size
