"""docker/compose.yml read the way `docker compose` reads it (no docker engine runs here): YAML with its
anchors, then `${VAR}`, `${VAR:-default}` and `${VAR:?message}` filled from an operator's variables."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")

# What an operator exports before `docker compose up` (the compose file's header says which are required).
OPERATOR = {"SECRET_KEY": secrets.token_urlsafe(50), "POSTGRES_PASSWORD": "pg-password", "S3_ACCESS_KEY_ID": "AK",
            "S3_SECRET_ACCESS_KEY": "SK", "ALLOWED_HOSTS": "egomask.example.org",
            "CSRF_TRUSTED_ORIGINS": "https://egomask.example.org"}


def compose_raw() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """`value` with compose's variable syntax filled in (a required one missing raises, as compose refuses)."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        given = variables.get(name)
        if operator == ":?" and not given:
            raise KeyError(f"{name}: {argument}")
        if operator == ":-" and not given:
            return argument
        return given or ""

    return _VARIABLE.sub(fill, value)


def compose(variables: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(compose_raw(), OPERATOR if variables is None else variables)


def ours(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run this project's image (web, workers, beat, migrate), by name."""
    return {name: service for name, service in config["services"].items()
            if str(service.get("image", "")).startswith("egomask:")}


def service_env(service: dict[str, Any]) -> dict[str, str]:
    return {key: "" if value is None else str(value) for key, value in (service.get("environment") or {}).items()}
