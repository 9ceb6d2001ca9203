"""The private storage: uploads, ground truth and per-expression results live here, never under MEDIA_URL."""

from __future__ import annotations

from django.core.files.storage import Storage, storages


def private_storage() -> Storage:
    return storages["private"]
