"""The health endpoints: liveness touches nothing; the full check sees the database, the cache, a real Redis
broker, private storage (a real SeaweedFS, and the local folder) and a live consumer per required queue,
from the heartbeats of real worker processes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from leaderboard.ops.models import WorkerHeartbeat
from leaderboard.ops.services import heartbeat_record

from . import processes
from .conftest import PASSWORD

BROKER_URL = "redis://127.0.0.1:6379/14"  # this module's own Redis database
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1
TOKEN = "ops-test-token-0123456789"
TIMEOUT = 30.0


@pytest.fixture
def health_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.HEALTH_REQUIRED_QUEUES = ["scoring", "maintenance"]
    settings.WORKER_HEARTBEAT_STALE_AFTER = 3
    settings.CELERY_BROKER_URL = BROKER_URL
    return settings


def health(client, **headers) -> tuple[int, dict]:
    response = client.get("/health/?format=json", **headers)
    return response.status_code, json.loads(response.content)


def as_operator(client) -> tuple[int, dict]:
    return health(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def checks(report: dict) -> dict[str, bool]:
    return {row["name"]: row["ok"] for row in report["checks"]}


def wait_for(what: str, done: Callable[[], bool], log: Path | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{log.read_text()[-3000:]}" if log else ""))
        time.sleep(0.2)


def fresh(hostname: str, queues: list[str]) -> WorkerHeartbeat:
    return heartbeat_record(hostname=hostname, pid=4242, queues=queues, concurrency=2, version="test",
                            started_at=timezone.now())


# --- liveness ---------------------------------------------------------------------------------------------


def test_it_answers_liveness_without_touching_anything(client, settings):
    # Over plain HTTP, under a Host the site does not serve, with the HTTPS redirect on: a load balancer's probe.
    # No django_db mark: any database access would raise.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["egomask.example.org"]
    response = client.get("/health/live/", HTTP_HOST="10.0.0.7:8000")
    assert (response.status_code, response.content) == (200, b"ok\n")
    assert response["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response


# --- the full check: services -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_passes_with_every_service_up_and_a_consumer_per_required_queue(client, health_settings):
    fresh("celery@scoring-1", ["scoring"])
    fresh("celery@beat-1", ["maintenance"])
    status, report = as_operator(client)
    assert status == 200, report
    assert report["status"] == "ok"
    assert checks(report) == {"database": True, "cache": True, "broker": True, "private storage": True,
                              "scoring queue": True, "maintenance queue": True}
    assert [w["hostname"] for w in report["workers"]] == ["celery@beat-1", "celery@scoring-1"]


@pytest.mark.django_db(transaction=True)
def test_it_fails_on_a_broker_that_does_not_answer_and_says_so_to_operators_only(client, health_settings, organizer):
    health_settings.CELERY_BROKER_URL = DEAD_BROKER
    fresh("celery@scoring-1", ["scoring", "maintenance"])
    started = time.monotonic()
    status, report = health(client)
    assert time.monotonic() - started < 10  # a short timeout, not the client's default
    assert status == 503
    assert report == {"status": "unhealthy", "checks": [
        {"name": "database", "ok": True}, {"name": "cache", "ok": True}, {"name": "broker", "ok": False},
        {"name": "private storage", "ok": True}, {"name": "scoring queue", "ok": True},
        {"name": "maintenance queue", "ok": True}]}  # no messages, no timings, no workers for the public
    # An operator (the token, or a staff account) sees why; the broker's address never shows.
    for headers, login in (({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, False), ({}, True)):
        if login:
            client.login(username="organizer", password=PASSWORD)
        status, report = health(client, **headers)
        broker = next(row for row in report["checks"] if row["name"] == "broker")
        assert status == 503 and "does not answer: OperationalError" in broker["message"]
        assert report["workers"][0]["hostname"] == "celery@scoring-1"
        assert "127.0.0.1" not in json.dumps(report)


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_wrong_token_the_details(client, health_settings):
    _, report = health(client, HTTP_AUTHORIZATION="Bearer not-the-token")
    assert "workers" not in report and all(set(row) == {"name", "ok"} for row in report["checks"])
    health_settings.METRICS_TOKEN = ""  # no token set: a bearer of the empty string is nobody
    _, report = health(client, HTTP_AUTHORIZATION="Bearer ")
    assert "workers" not in report


@pytest.mark.django_db(transaction=True)
def test_it_serves_people_a_page_and_machines_json(client, health_settings):
    page = client.get("/health/", HTTP_ACCEPT="text/html")
    assert page.status_code == 503 and page["Content-Type"].startswith("text/html")  # no worker at all
    assert b"scoring queue" in page.content and b"failing" in page.content
    machine = client.get("/health/", HTTP_ACCEPT="application/json")
    assert machine["Content-Type"] == "application/json" and json.loads(machine.content)["status"] == "unhealthy"
    assert client.get("/health/?format=rss").status_code == 404  # the feeds would carry the messages


@pytest.mark.django_db(transaction=True)
def test_it_probes_private_storage_on_s3(client, health_settings, s3_private, s3_server, bucket):
    fresh("celery@all", ["scoring", "maintenance"])
    status, report = as_operator(client)
    assert status == 200 and checks(report)["private storage"] is True
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # the probe was deleted
    s3_server.stop()
    try:
        status, report = as_operator(client)
    finally:
        s3_server.start()
    storage = next(row for row in report["checks"] if row["name"] == "private storage")
    assert status == 503 and storage["ok"] is False
    assert "private storage cannot write, read and delete a file: EndpointConnectionError" in storage["message"]


@pytest.mark.django_db(transaction=True)
def test_it_probes_the_local_private_folder(client, health_settings, tmp_path):
    fresh("celery@all", ["scoring", "maintenance"])
    folder = tmp_path / "private"
    health_settings.STORAGES = {**health_settings.STORAGES, "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(folder)}}}
    status, report = as_operator(client)
    assert status == 200 and list((folder / "health-check").iterdir()) == []
    (folder / "health-check").rmdir()
    (folder / "health-check").write_text("a file where the folder should be")
    status, report = as_operator(client)
    storage = next(row for row in report["checks"] if row["name"] == "private storage")
    assert status == 503 and storage["ok"] is False and storage["message"].startswith("Unavailable: private storage")


# --- worker liveness: real worker processes -------------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[None]:
    with processes.redis_broker(BROKER_URL):
        yield


def start_worker(tmp_path: Path, queues: str):
    return processes.celery_worker(BROKER_URL, tmp_path / f"worker-{queues}.log", queues=queues,
                                   env={"WORKER_HEARTBEAT_EVERY": "1"})


@pytest.mark.django_db(transaction=True)
def test_it_sees_a_real_worker_join_and_leave_its_queues(client, health_settings, broker, tmp_path):
    health_settings.HEALTH_REQUIRED_QUEUES = ["scoring", "maintenance"]
    _, report = as_operator(client)
    assert checks(report)["scoring queue"] is False and checks(report)["maintenance queue"] is False
    with start_worker(tmp_path, "scoring,maintenance") as worker:
        wait_for("the worker's heartbeat", lambda: WorkerHeartbeat.objects.filter(pid=worker.pid).exists(),
                 tmp_path / "worker-scoring,maintenance.log")
        beat = WorkerHeartbeat.objects.get(pid=worker.pid)
        assert beat.hostname.startswith("celery@") and beat.queues == ["maintenance", "scoring"]
        assert beat.concurrency == 1 and beat.version.startswith("egomask ")
        first = beat.last_seen_at
        wait_for("a second beat", lambda: WorkerHeartbeat.objects.get(pid=worker.pid).last_seen_at > first)
        status, report = as_operator(client)
        assert status == 200, report
        assert [(w["hostname"], w["pid"], w["live"]) for w in report["workers"]] == [(beat.hostname, worker.pid, True)]
        call_command("check_heartbeat", node=beat.hostname, queue=["scoring"])  # the compose healthcheck's test
    # Stopped cleanly (SIGTERM): the row is removed at once, and the queues have no consumer.
    assert not WorkerHeartbeat.objects.filter(hostname=beat.hostname).exists()
    status, report = as_operator(client)
    assert status == 503 and checks(report)["scoring queue"] is False
    with pytest.raises(CommandError, match="has written no heartbeat"):
        call_command("check_heartbeat", node=beat.hostname)


@pytest.mark.django_db(transaction=True)
def test_it_fails_the_queue_once_a_killed_workers_heartbeat_goes_stale(client, health_settings, broker, tmp_path):
    health_settings.HEALTH_REQUIRED_QUEUES = ["scoring"]
    with start_worker(tmp_path, "scoring") as worker:
        wait_for("the worker's heartbeat", lambda: WorkerHeartbeat.objects.filter(pid=worker.pid).exists(),
                 tmp_path / "worker-scoring.log")
        assert as_operator(client)[0] == 200
        os.kill(worker.pid, signal.SIGKILL)  # no clean stop: the row stays and goes stale
        worker.wait(timeout=10)
        killed_at = time.monotonic()
        wait_for("the heartbeat to go stale", lambda: as_operator(client)[0] == 503)
        assert time.monotonic() - killed_at < health_settings.WORKER_HEARTBEAT_STALE_AFTER + 2
        status, report = as_operator(client)
        assert [w["live"] for w in report["workers"]] == [False]
        assert "no live worker consumes the scoring queue" in report["checks"][-1]["message"]
        with pytest.raises(CommandError, match="old"):
            call_command("check_heartbeat", node=report["workers"][0]["hostname"], max_age=3)


@pytest.mark.django_db(transaction=True)
def test_it_shows_a_signed_in_operator_the_workers_on_the_page(client, health_settings, organizer, alice):
    fresh("celery@scoring-7", ["maintenance", "scoring"])
    client.login(username="alice", password=PASSWORD)  # a participant: the verdicts, not the workers
    page = client.get("/health/")
    assert page.status_code == 200 and b"all checks pass" in page.content and b"celery@" not in page.content
    client.login(username="organizer", password=PASSWORD)
    page = client.get("/health/")
    assert b"celery@scoring-7" in page.content and b"maintenance, scoring" in page.content


@pytest.mark.django_db(transaction=True)
def test_it_beats_from_the_main_process_of_a_prefork_worker(client, health_settings, broker, tmp_path):
    health_settings.HEALTH_REQUIRED_QUEUES = ["scoring"]
    log = tmp_path / "prefork.log"
    with processes.celery_worker(BROKER_URL, log, queues="scoring", pool="prefork",
                                 env={"WORKER_HEARTBEAT_EVERY": "1"}) as worker:
        wait_for("the prefork worker's heartbeat", lambda: WorkerHeartbeat.objects.exists(), log)
        beat = WorkerHeartbeat.objects.get()
        assert beat.pid == worker.pid  # the process that takes tasks off the queue, not a pool child
        wait_for("a second beat", lambda: WorkerHeartbeat.objects.get().last_seen_at > beat.last_seen_at, log)
        assert as_operator(client)[0] == 200
    assert not WorkerHeartbeat.objects.exists()
