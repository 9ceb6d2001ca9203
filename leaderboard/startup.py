"""What a process makes on disk when it starts, so that importing the settings makes nothing.

Run from the project's AppConfig.ready() (web, worker, beat and every manage.py command start there):
- the working folder (VAR_DIR; SQLite keeps the embedded database in it),
- STATIC_ROOT (whitenoise warns on every request when it is missing),
- the folders of kombu's filesystem transport, when that is the broker (kombu makes none of them),
- in embedded mode (no SECRET_KEY and no DATABASE_URL), the secret key file: settings.py uses the
  file's key when there is one and a fresh random key otherwise; this keeps that key for the next
  start, so sessions and signed upload links survive a restart of `make demo`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any


def prepare_local_folders(settings: Any) -> None:
    """Create the folders and the embedded secret file the settings point at (idempotent)."""
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if str(settings.CELERY_BROKER_URL).startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)
    secret_file = getattr(settings, "EMBEDDED_SECRET_KEY_FILE", None)
    if secret_file is not None and not Path(secret_file).exists():
        keep_secret_key(Path(secret_file), settings.SECRET_KEY)


def keep_secret_key(path: Path, key: str) -> None:
    """Write `key` to `path`, readable by this user only, unless another process wrote one first."""
    with contextlib.suppress(FileExistsError):  # another process of this checkout started first: its key stays
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key)
