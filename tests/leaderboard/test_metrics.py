"""/metrics: refused without METRICS_TOKEN, and with it the request metrics plus the database's figures
(submissions by status, scoring time, the queue, live workers); under gunicorn with several processes
(multi-process mode, as docker/compose.yml runs it) a scrape counts every process's requests."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from leaderboard.challenges.services import phase_create
from leaderboard.ops.models import WorkerHeartbeat
from leaderboard.submissions.models import Submission

from . import processes
from .s3 import free_ports

TOKEN = "metrics-test-token-0123456789"
Status = Submission.Status


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", **headers)


def add(phase, status: str, took: float | None = None) -> None:
    now = timezone.now()
    extra = ({"started_at": now - dt.timedelta(seconds=took), "finished_at": now, "scoring_seconds": took}
             if took else {})
    Submission.objects.create(phase=phase, file="submissions/x.zip", file_sha256="0" * 64, method_name="m",
                              status=status, **extra)


def test_it_does_not_exist_without_a_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert scrape(client).status_code == 404
    assert scrape(client, token="").status_code == 404


def test_it_refuses_a_scrape_without_the_token(client, db, settings):
    settings.METRICS_TOKEN = TOKEN
    for token in (None, "wrong", TOKEN + "x"):
        response = scrape(client, token)
        assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"egomask_" not in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401  # Bearer only


def test_it_shows_the_counts_with_the_token(client, challenge, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.WORKER_HEARTBEAT_STALE_AFTER = 30
    phase = phase_create(challenge=challenge, slug="test", name="Test")
    for status in (Status.SUBMITTED, Status.SUBMITTED, Status.SCORING, Status.FAILED):
        add(phase, status)
    for took in (0.5, 3, 40):
        add(phase, Status.FINISHED, took=took)
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="celery@w1", pid=1, queues=["scoring"], concurrency=2, version="v",
                                   started_at=now, last_seen_at=now)
    WorkerHeartbeat.objects.create(hostname="celery@old", pid=2, queues=["scoring", "gpu"], concurrency=1,
                                   version="v", started_at=now, last_seen_at=now - dt.timedelta(minutes=5))
    response = scrape(client)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=")
    found = samples(response.content.decode())
    by = {"challenge": "egomask", "phase": "test"}

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("egomask_submissions", **by, status="submitted") == 2
    assert value("egomask_submissions", **by, status="scoring") == 1
    assert value("egomask_submissions", **by, status="failed") == 1
    assert value("egomask_submissions", **by, status="finished") == 3
    assert value("egomask_queue_waiting", queue="scoring") == 2
    # Scoring time over the last 24 h: 0.5 s, 3 s, 40 s.
    assert value("egomask_scoring_seconds_bucket", **by, le="1.0") == 1
    assert value("egomask_scoring_seconds_bucket", **by, le="5.0") == 2
    assert value("egomask_scoring_seconds_bucket", **by, le="30.0") == 2
    assert value("egomask_scoring_seconds_bucket", **by, le="60.0") == 3
    assert value("egomask_scoring_seconds_bucket", **by, le="+Inf") == 3
    assert value("egomask_scoring_seconds_gcount", **by) == 3
    assert value("egomask_scoring_seconds_gsum", **by) == pytest.approx(43.5)
    # Live workers per queue: the stale one counts nowhere; every routed queue has a sample, 0 when none.
    assert value("egomask_workers_live", queue="scoring") == 1
    assert value("egomask_workers_live", queue="gpu") == 0 and value("egomask_workers_live", queue="maintenance") == 0
    assert ("egomask_worker_heartbeat_age_seconds", (("worker", "celery@w1"),)) in found
    # django-prometheus's request metrics are there too.
    assert any(name.startswith("django_http_requests_total_by_method") for name, _ in found)


@pytest.mark.django_db(transaction=True)
def test_it_adds_up_every_gunicorn_process_in_multiprocess_mode(tmp_path, challenge):
    """gunicorn with docker/gunicorn.conf.py, two worker processes, PROMETHEUS_MULTIPROC_DIR set: the requests
    of both processes show in one scrape."""
    (port,) = free_ports(1)
    folder = tmp_path / "prometheus"
    env = {**processes.worker_env("redis://127.0.0.1:6379/14"), "METRICS_TOKEN": TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(folder), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"}
    folder.mkdir()
    (folder / "counter_stale.db").write_bytes(b"left by a previous run")  # on_starting empties the folder
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "docker/gunicorn.conf.py", "leaderboard.wsgi"],
                              cwd=processes.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/challenges/", timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.3)
        for _ in range(40):  # new connections each time: both processes get some
            urllib.request.urlopen(base + "/challenges/", timeout=10).read()
        request = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        text = urllib.request.urlopen(request, timeout=10).read().decode()
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    pids = {path.name.rsplit("_", 1)[-1] for path in folder.glob("counter_*.db")}
    assert len(pids) >= 2 and "stale" not in pids  # two processes wrote counters; the old file was removed
    views = [s for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "django_http_requests_total_by_view_transport_method_total"
             and s.labels.get("view") == "challenge_list"]
    assert sum(s.value for s in views) >= 41  # every request to the list, whichever process answered it
    assert "egomask_workers_live" in text
