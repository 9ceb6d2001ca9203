"""docker/compose.yml without a docker engine: its services, healthchecks and volumes; every variable it sets
is read by the code; the commands it runs (and their healthchecks) exist and run here.
(test_baseline_docker.py checks the GPU worker's parts; test_deploy_checks.py runs `check --deploy` under the
environment this file gives the web service.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from leaderboard.ops.models import WorkerHeartbeat
from leaderboard.ops.services import heartbeat_record

from . import processes
from .compose import DOCKER, OPERATOR, compose, ours, service_env

ROOT = DOCKER.parent
APP_SERVICES = {"migrate", "web", "worker", "gpu-worker", "beat"}


def test_it_has_every_service_with_a_healthcheck():
    config = compose()
    assert set(config["services"]) == APP_SERVICES | {"postgres", "redis", "s3"}
    assert set(ours(config)) == APP_SERVICES
    for name in ("web", "worker", "gpu-worker", "beat", "postgres", "redis", "s3"):
        check = config["services"][name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"} and check.get("interval"), name
    # The application waits for healthy services, and the one-shot migration before it.
    depends = config["services"]["web"]["depends_on"]
    assert {name: d["condition"] for name, d in depends.items()} == {
        "postgres": "service_healthy", "redis": "service_healthy", "s3": "service_healthy",
        "migrate": "service_completed_successfully"}


def test_it_checks_each_worker_on_the_queues_it_consumes():
    config = compose()
    for name, queues in (("worker", {"scoring"}), ("gpu-worker", {"gpu", "scoring"}), ("beat", {"maintenance"})):
        service = config["services"][name]
        command = service["command"]
        consumed = set(command[command.index("-Q") + 1].split(","))
        test = service["healthcheck"]["test"]
        assert test[1:4] == ["python", "manage.py", "check_heartbeat"], name
        assert {test[i + 1] for i, arg in enumerate(test) if arg == "--queue"} == consumed == queues, name
    # Between them the workers consume every queue tasks are routed to, and every required one.
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    consumed = set()
    for name in ("worker", "gpu-worker", "beat"):
        command = config["services"][name]["command"]
        consumed |= set(command[command.index("-Q") + 1].split(","))
    assert routed <= consumed and set(settings.HEALTH_REQUIRED_QUEUES) <= consumed


def test_it_declares_every_volume_it_mounts():
    config = compose()
    used = set()
    for service in config["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith(("/", ".")):
                used.add(source)
    assert used == set(config["volumes"])
    # The data stays: the database, Redis's append-only file and the S3 objects are on named volumes.
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data"), ("s3", "/data")):
        assert any(m.endswith(":" + target) for m in config["services"][name]["volumes"]), name


def _read_by_the_code() -> set[str]:
    """Every variable name the project reads from the environment (leaderboard/, docker/gunicorn.conf.py)."""
    pattern = re.compile(r"""(?:env_\w+|_required_in_production|os\.environ\.get|os\.environ\.setdefault|getenv)"""
                         r"""\(\s*["']([A-Z][A-Z0-9_]+)["']|os\.environ\[["']([A-Z][A-Z0-9_]+)["']\]""")
    names = set()
    for path in [*(ROOT / "leaderboard").rglob("*.py"), DOCKER / "gunicorn.conf.py"]:
        for match in pattern.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def test_it_sets_only_variables_the_code_reads():
    read = _read_by_the_code()
    assert {"DATABASE_URL", "SENTRY_DSN", "METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR"} <= read  # the scan works
    for name, service in ours(compose()).items():
        unread = set(service_env(service)) - read
        assert not unread, f"{name} sets {sorted(unread)}, which nothing in leaderboard/ reads"
    # The Dockerfile's ENV lines too (Python's own variables aside).
    dockerfile = (DOCKER / "Dockerfile").read_text()
    set_there = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", " ".join(
        line for line in dockerfile.replace("\\\n", " ").splitlines() if line.startswith("ENV "))))
    assert set_there - read - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
                               "PIP_DISABLE_PIP_VERSION_CHECK", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} == set()


def test_it_passes_the_operators_settings_to_every_application_service():
    config = compose({**OPERATOR,
                      "SENTRY_DSN": "https://key@sentry.example.org/1", "METRICS_TOKEN": "scrape-token"})
    for name, service in ours(config).items():
        env = service_env(service)
        assert env["SENTRY_DSN"] == "https://key@sentry.example.org/1" and env["METRICS_TOKEN"] == "scrape-token"
        assert env["HEALTH_REQUIRED_QUEUES"] == "scoring,maintenance", name
    assert service_env(config["services"]["web"])["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    # Unset, they stay off (an empty SENTRY_DSN, no METRICS_TOKEN: /metrics does not exist).
    quiet = service_env(compose()["services"]["web"])
    assert quiet["SENTRY_DSN"] == "" and quiet["METRICS_TOKEN"] == ""


def test_it_refuses_to_start_without_the_required_secrets():
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        with pytest.raises(KeyError, match=name):
            compose({key: value for key, value in OPERATOR.items() if key != name})


# --- the commands exist and run here ---------------------------------------------------------------------------


def _commands() -> list[tuple[str, list[str]]]:
    config = compose()
    found = [(name, service["command"]) for name, service in ours(config).items() if "command" in service]
    cmd = re.search(r'^CMD (\[.*\])$', (DOCKER / "Dockerfile").read_text(), re.MULTILINE)
    found.append(("Dockerfile CMD", json.loads(cmd.group(1))))
    return found


def _local(argv: list[str]) -> list[str]:
    """The same command with this environment's executables (the image's are on PATH there)."""
    executable = sys.executable if argv[0] == "python" else shutil.which(argv[0], path=str(Path(sys.executable).parent))
    assert executable, f"{argv[0]} is not installed here"
    return [executable, *argv[1:]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["migrate", "web", "worker", "gpu-worker", "beat", "Dockerfile CMD"])
def test_it_runs_each_services_command_here(name):
    argv = dict(_commands())[name]
    env = processes.worker_env("redis://127.0.0.1:6379/14")
    # gunicorn: load the configuration and the application, serve nothing; the others: every option parsed,
    # then the help (an unknown option or a missing command fails)
    command = ([*_local(argv[:1]), "--check-config", *argv[1:]] if argv[0] == "gunicorn"
               else [*_local(argv), "--help"])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_workers_healthcheck_here():
    test = compose()["services"]["worker"]["healthcheck"]["test"][1:]
    env = processes.worker_env("redis://127.0.0.1:6379/14")
    node = "celery@" + subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    missing = subprocess.run(_local(test), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "has written no heartbeat" in missing.stderr
    heartbeat_record(hostname=node, pid=1, queues=["scoring"], concurrency=2, version="v",
                     started_at=timezone.now())
    alive = subprocess.run(_local(test), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert alive.returncode == 0, alive.stderr
    assert f"{node} is alive" in alive.stdout
    WorkerHeartbeat.objects.filter(hostname=node).update(queues=["gpu"])
    wrong = subprocess.run(_local(test), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 1 and "does not consume scoring" in wrong.stderr


def test_it_runs_the_webs_healthcheck_against_a_live_server(live_server):
    test = compose()["services"]["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and "http://127.0.0.1:8000/health/live/" in test[3]
    script = test[3].replace("http://127.0.0.1:8000", live_server.url)
    assert subprocess.run([sys.executable, "-c", script], timeout=30).returncode == 0
    dead = subprocess.run([sys.executable, "-c", test[3].replace(":8000", ":1")], capture_output=True, timeout=30)
    assert dead.returncode != 0  # nothing serves: the check fails


def test_it_probes_the_s3_servers_health_address(s3_server):
    test = compose()["services"]["s3"]["healthcheck"]["test"]
    url = test[-1]
    assert url.startswith("http://127.0.0.1:8333/")
    # The same address on the real SeaweedFS S3 gateway these tests run (another port).
    local = s3_server.endpoint + url.removeprefix("http://127.0.0.1:8333")
    with urllib.request.urlopen(local, timeout=10) as response:
        assert response.status == 200
