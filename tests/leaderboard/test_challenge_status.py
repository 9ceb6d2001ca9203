"""The public queue status of a challenge (/challenges/<slug>/status/, status.json, the API): counts only,
against a hand computation from rows made here."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from leaderboard.challenges.models import Challenge
from leaderboard.challenges.services import phase_create
from leaderboard.ops.models import WorkerHeartbeat
from leaderboard.submissions.models import Submission

Status = Submission.Status


def add(phase, status: str, *, took: float | None = None, finished_ago: dt.timedelta = dt.timedelta(hours=1)):
    """A submission row in `status`; a finished or failed one started `took` seconds before it finished."""
    now = timezone.now()
    fields = {}
    if took is not None:
        finished = now - finished_ago
        fields = {"started_at": finished - dt.timedelta(seconds=took), "finished_at": finished,
                  "scoring_seconds": took}
    return Submission.objects.create(phase=phase, file="submissions/x.zip", file_sha256="0" * 64,
                                     method_name="m", status=status, **fields)


def worker(name: str, queues: list[str], concurrency: int, seen_ago: float = 1.0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname=name, pid=1, queues=queues, concurrency=concurrency, version="v",
                                   started_at=now - dt.timedelta(hours=1),
                                   last_seen_at=now - dt.timedelta(seconds=seen_ago))


@pytest.fixture
def world(challenge, settings):
    settings.WORKER_HEARTBEAT_STALE_AFTER = 30
    first = phase_create(challenge=challenge, slug="test", name="Test phase", order=1)
    second = phase_create(challenge=challenge, slug="second", name="Second phase", order=2)
    other = phase_create(challenge=Challenge.objects.create(slug="other", title="Other"), slug="p", name="P")
    for status in (Status.SUBMITTED, Status.SUBMITTED, Status.VALIDATING, Status.SCORING):
        add(first, status)
    for took in (10, 20, 60):
        add(first, Status.FINISHED, took=took)
    add(first, Status.FINISHED, took=1000, finished_ago=dt.timedelta(hours=30))  # outside the last 24 h
    add(first, Status.FAILED, took=5)  # a failure is no scoring time
    add(first, Status.CANCELLED)
    add(second, Status.FINISHED, took=40)
    add(other, Status.SUBMITTED)  # another challenge's: it shares the workers, so it is ahead in the queue
    worker("celery@a", ["scoring"], 2)
    worker("celery@b", ["gpu", "scoring"], 1)
    worker("celery@gpu", ["gpu"], 1)  # consumes no scoring
    worker("celery@gone", ["scoring"], 4, seen_ago=60)  # stale
    return challenge


def test_it_counts_the_queue_and_estimates_the_wait(client, world, django_assert_num_queries):
    with django_assert_num_queries(5):  # the challenge, its phases, active counts, the day's durations, heartbeats
        response = client.get("/challenges/egomask/status.json")
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    data = json.loads(response.content)
    # Ahead: 2 waiting + 2 running here, 1 waiting in the other challenge. Median of (10, 20, 60, 40) is 30.
    # Live scoring slots: 2 + 1 (the gpu-only worker and the stale one do not count).
    assert {k: data[k] for k in ("challenge", "queue_ahead", "scoring_workers", "scoring_slots", "median_seconds",
                                 "note")} == {"challenge": "egomask", "queue_ahead": 5, "scoring_workers": 2,
                                              "scoring_slots": 3, "median_seconds": 30.0, "note": ""}
    assert data["phases"] == [
        {"slug": "test", "name": "Test phase", "waiting": 2, "running": 2, "scored_last_day": 3,
         "median_seconds": 20.0, "estimated_wait_seconds": 5 * 30 / 3 + 20},
        {"slug": "second", "name": "Second phase", "waiting": 0, "running": 0, "scored_last_day": 1,
         "median_seconds": 40.0, "estimated_wait_seconds": 5 * 30 / 3 + 40},
    ]
    assert "an estimate" in data["estimate_method"]
    # Nothing per team or per submission, nothing about the workers but counts.
    assert "celery@" not in response.content.decode() and "team" not in response.content.decode()
    # ?format=json and the API say the same.
    assert json.loads(client.get("/challenges/egomask/status/?format=json").content)["phases"] == data["phases"]
    api = client.get(f"/api/v1/challenges/{world.pk}/status/")
    assert api.status_code == 200 and json.loads(api.content)["phases"] == data["phases"]


def test_it_says_when_no_worker_runs(client, world):
    WorkerHeartbeat.objects.all().delete()
    data = json.loads(client.get("/challenges/egomask/status.json").content)
    assert data["scoring_workers"] == 0 and data["note"].startswith("No scoring worker is running")
    assert [p["estimated_wait_seconds"] for p in data["phases"]] == [None, None]
    page = client.get("/challenges/egomask/status/")
    assert b"no worker is running" in page.content and b"No scoring worker is running" in page.content


def test_it_has_no_estimate_without_a_recent_scoring(client, challenge, settings):
    phase = phase_create(challenge=challenge, slug="test", name="Test phase")
    add(phase, Status.SUBMITTED)
    worker("celery@a", ["scoring"], 1)
    data = json.loads(client.get("/challenges/egomask/status.json").content)
    assert data["median_seconds"] is None and data["phases"][0]["estimated_wait_seconds"] is None
    assert "No submission was scored in the last 24 hours" in data["note"]


def test_it_shows_the_figures_on_a_page_linked_from_the_challenge(client, world):
    challenge_page = client.get("/challenges/egomask/")
    assert b'href="/challenges/egomask/status/"' in challenge_page.content
    page = client.get("/challenges/egomask/status/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "2 running (3 submissions at a time)" in text and "5 submissions waiting or being scored" in text
    assert "about 70 s" in text and "about 2 min" in text and "30 s over the last 24 h" in text


def test_it_hides_an_unpublished_challenge_like_its_other_pages(client, world):
    Challenge.objects.filter(pk=world.pk).update(is_published=False)
    missing = client.get("/challenges/nope/status/")
    hidden = client.get("/challenges/egomask/status/")
    assert hidden.status_code == missing.status_code == 404
    assert b"Queue status" not in hidden.content and b"Not found" in hidden.content
    assert client.get(f"/api/v1/challenges/{world.pk}/status/").status_code == 404
