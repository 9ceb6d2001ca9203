"""The CLI's saved login: which server, which token. EGOMASK_SERVER / EGOMASK_TOKEN override it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .exits import ConfigError


@dataclasses.dataclass(frozen=True)
class Config:
    """A server's base URL, the API token for it, and whose token it is."""

    server: str | None
    token: str | None
    username: str | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where `egomask login` keeps the server and token: the user's config folder.

    $XDG_CONFIG_HOME/egomask/config.json, else ~/.config/egomask/config.json (%APPDATA% on Windows).
    """
    env = os.environ if env is None else env
    if env.get("XDG_CONFIG_HOME"):
        base = Path(env["XDG_CONFIG_HOME"])
    elif os.name == "nt" and env.get("APPDATA"):
        base = Path(env["APPDATA"])
    else:
        base = Path(env.get("HOME") or Path.home()) / ".config"
    return base / "egomask" / "config.json"


def normalize_server(url: str) -> str:
    """The server's base URL without a trailing slash; refuses anything but http(s)."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"the server must be an http:// or https:// address, not {url!r}")
    return url


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """The saved login with EGOMASK_SERVER / EGOMASK_TOKEN taking precedence over the file."""
    env = os.environ if env is None else env
    saved: dict[str, Any] = {}
    path = config_path(env)
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; run `egomask login` again") from None
        if not isinstance(saved, dict):
            raise ConfigError(f"{path} is not a JSON object; run `egomask login` again")
    server = env.get("EGOMASK_SERVER") or saved.get("server")
    token = env.get("EGOMASK_TOKEN") or saved.get("token")
    return Config(server=normalize_server(server) if server else None, token=token or None,
                  username=saved.get("username") if not env.get("EGOMASK_TOKEN") else None)


def save_config(config: Config, env: Mapping[str, str] | None = None) -> Path:
    """Write the login atomically, readable by its owner only (mode 0600, folder 0700)."""
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"server": config.server, "token": config.token, "username": config.username}, indent=2)
    # mkstemp creates the file with mode 0600 from the start: the token is never readable by others.
    fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(body + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path
