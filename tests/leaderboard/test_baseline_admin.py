"""The organizer's admin for baselines: the phase action queues the weight-free runners, a run can be
run again or sent again, the pages load, and only staff get in."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from leaderboard.baselines import dispatch
from leaderboard.baselines.models import BaselineRun
from leaderboard.baselines.reported import PAPER_FILE, reported_import, reported_parse
from leaderboard.baselines.services import baseline_run_create
from leaderboard.baselines.work import baseline_run_here

from .baselinekit import *  # noqa: F403  (its fixtures)


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr(dispatch, "_send", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def staff_client(client, organizer):
    client.force_login(organizer)
    return client


def act(client, url: str, action: str, *objects) -> list[str]:
    response = client.post(url, {"action": action, "_selected_action": [obj.pk for obj in objects]}, follow=True)
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_it_queues_the_weight_free_baselines_from_the_phase_admin(staff_client, framed_phase, organizer, sent,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        messages = act(staff_client, "/admin/challenges/phase/", "run_weight_free_baselines", framed_phase)
    assert messages == ["2 baseline runs queued."]
    runs = BaselineRun.objects.order_by("pk")
    assert [(r.runner, r.user, r.status) for r in runs] == [("empty", organizer, "queued"),
                                                            ("colour", organizer, "queued")]
    assert sent == [(runs[0].pk, 1, "cpu"), (runs[1].pk, 1, "cpu")]
    # The phase admin keeps the submissions app's rescore action.
    assert "rescore_all" in staff_client.get("/admin/challenges/phase/").content.decode()


def test_it_runs_again_and_sends_again_from_the_run_admin(staff_client, framed_phase, organizer, sent,
                                                          django_capture_on_commit_callbacks):
    done = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="colour",
                                                        shards=2, options={"min_area": "0.001"}).pk)
    waiting = baseline_run_create(phase=framed_phase, user=organizer, runner="empty")
    with django_capture_on_commit_callbacks(execute=True):
        assert act(staff_client, "/admin/baselines/baselinerun/", "run_again", done) == [
            "1 baseline run queued again."]
        messages = act(staff_client, "/admin/baselines/baselinerun/", "send_again", done, waiting)
    again = BaselineRun.objects.exclude(pk__in=[done.pk, waiting.pk]).get()
    assert (again.runner, again.shards, again.options) == ("colour", 2, {"min_area": "0.001"})
    assert messages[0].startswith(f"run #{done.pk} colour 1.0.0: Run #{done.pk} is submitted")
    assert messages[1] == "1 baseline run sent again."
    assert sent == [(again.pk, 2, "cpu"), (waiting.pk, 1, "cpu")]


def test_it_loads_the_baseline_pages_for_staff_only(staff_client, client, framed_phase, organizer, alice):
    run = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="empty").pk)
    reported_import(phase=framed_phase, results=reported_parse(PAPER_FILE.read_text()))
    pages = ["/admin/baselines/baselinerun/", f"/admin/baselines/baselinerun/{run.pk}/change/",
             "/admin/baselines/reportedresult/"]
    for url in pages:
        assert staff_client.get(url).status_code == 200, url
    client.force_login(alice)
    assert all(client.get(url).status_code == 302 for url in pages)
