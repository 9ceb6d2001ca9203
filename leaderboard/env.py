"""Settings from the environment through small typed helpers that fail loudly on a bad value."""

from __future__ import annotations

import os


class ImproperlyConfiguredEnv(Exception):
    pass


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_base64(name: str, *, size: int, default: str = "") -> str:
    """A base64 value that must decode to exactly `size` bytes (a raw key); `default` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    check_base64(name, raw, size=size)
    return raw


def check_base64(name: str, value: str, *, size: int) -> None:
    import base64
    import binascii

    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfiguredEnv(f"{name}: {value[:12]!r}... is not base64") from None
    if len(decoded) != size:
        raise ImproperlyConfiguredEnv(f"{name}: decodes to {len(decoded)} bytes, not {size}")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a number") from None

_EMAIL_SCHEMES = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}


def email_settings(*, default_backend: str, file_path: str) -> dict[str, object]:
    """Django's EMAIL_* settings from EMAIL_URL (one URL) or the separate EMAIL_* variables.

    EMAIL_URL: smtp://user:password@host:587?tls=1 (smtps:// for implicit TLS), file:///path/to/folder,
    console://, locmem://, dummy://. Separate variables override what the URL says.
    """
    from urllib.parse import parse_qs, unquote, urlsplit

    found: dict[str, object] = {"EMAIL_BACKEND": default_backend, "EMAIL_HOST": "localhost", "EMAIL_PORT": 25,
                                "EMAIL_HOST_USER": "", "EMAIL_HOST_PASSWORD": "", "EMAIL_USE_TLS": False,
                                "EMAIL_USE_SSL": False, "EMAIL_FILE_PATH": file_path}
    url = env_str("EMAIL_URL").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in _EMAIL_SCHEMES:
            raise ImproperlyConfiguredEnv(f"EMAIL_URL={url!r}: the scheme must be one of "
                                          f"{', '.join(sorted(_EMAIL_SCHEMES))}")
        found["EMAIL_BACKEND"] = _EMAIL_SCHEMES[parts.scheme]
        if parts.scheme == "file":
            if not parts.path:
                raise ImproperlyConfiguredEnv(f"EMAIL_URL={url!r}: name the folder, e.g. file:///var/mail")
            found["EMAIL_FILE_PATH"] = unquote(parts.path)
        elif parts.scheme in ("smtp", "smtps"):
            query = {key: values[-1].lower() for key, values in parse_qs(parts.query).items()}
            try:
                port = parts.port
            except ValueError:
                raise ImproperlyConfiguredEnv(f"EMAIL_URL={url!r}: the port is not a number") from None
            found.update(EMAIL_HOST=parts.hostname or "localhost", EMAIL_PORT=port or (465 if parts.scheme == "smtps"
                                                                                         else 25),
                         EMAIL_HOST_USER=unquote(parts.username or ""),
                         EMAIL_HOST_PASSWORD=unquote(parts.password or ""),
                         EMAIL_USE_TLS=query.get("tls") in {"1", "true", "yes", "on"},
                         EMAIL_USE_SSL=parts.scheme == "smtps" or query.get("ssl") in {"1", "true", "yes", "on"})
    found["EMAIL_BACKEND"] = env_str("EMAIL_BACKEND") or found["EMAIL_BACKEND"]
    found["EMAIL_HOST"] = env_str("EMAIL_HOST") or found["EMAIL_HOST"]
    found["EMAIL_PORT"] = env_int("EMAIL_PORT", found["EMAIL_PORT"])  # type: ignore[arg-type]
    found["EMAIL_HOST_USER"] = env_str("EMAIL_HOST_USER") or found["EMAIL_HOST_USER"]
    found["EMAIL_HOST_PASSWORD"] = env_str("EMAIL_HOST_PASSWORD") or found["EMAIL_HOST_PASSWORD"]
    found["EMAIL_USE_TLS"] = env_bool("EMAIL_USE_TLS", found["EMAIL_USE_TLS"])  # type: ignore[arg-type]
    found["EMAIL_USE_SSL"] = env_bool("EMAIL_USE_SSL", found["EMAIL_USE_SSL"])  # type: ignore[arg-type]
    found["EMAIL_FILE_PATH"] = env_str("EMAIL_FILE_PATH") or found["EMAIL_FILE_PATH"]
    if found["EMAIL_USE_TLS"] and found["EMAIL_USE_SSL"]:
        raise ImproperlyConfiguredEnv("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: STARTTLS (587) or TLS (465)")
    return found
