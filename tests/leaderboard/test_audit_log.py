"""The audit log (django-simple-history): who changed what on a challenge, when, why, old → new; recorded from
the admin, the services and the workers alike; a page per challenge for its hosts, and a CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from leaderboard.audit import audit_entries
from leaderboard.challenges.models import Challenge, Host, Phase
from leaderboard.challenges.services import phase_create
from leaderboard.submissions.moderation import submission_hide

from .conftest import make_user


@pytest.fixture
def hosts(challenge):
    hector, vera, olga = make_user("hector"), make_user("vera"), make_user("olga")
    Host.objects.create(challenge=challenge, user=hector, role=Host.Role.ORGANIZER)
    Host.objects.create(challenge=challenge, user=vera, role=Host.Role.VIEWER)
    other = Challenge.objects.create(slug="other", title="Other challenge")
    Host.objects.create(challenge=other, user=olga, role=Host.Role.ORGANIZER)
    return {"host": hector, "viewer": vera, "other_host": olga, "other": other}


def phase_form(phase: Phase, **changes: object) -> dict[str, object]:
    """The phase admin's form as it stands, with `changes` (the inline-free change form)."""
    data = {"challenge": phase.challenge_id, "slug": phase.slug, "name": phase.name, "description": phase.description,
            "order": phase.order, "starts_at_0": "", "starts_at_1": "", "ends_at_0": "", "ends_at_1": "",
            "accepts_submissions": "on" if phase.accepts_submissions else "", "max_per_day": phase.max_per_day or "",
            "max_total": phase.max_total or "", "visibility": phase.visibility, "reveal_at_0": "",
            "reveal_at_1": "", "ranking_rule": phase.ranking_rule, "primary_metric": phase.primary_metric,
            "ground_truth": phase.ground_truth_id or "", "bootstrap_samples": phase.bootstrap_samples,
            "tie_level": phase.tie_level, "min_bucket_size": phase.min_bucket_size,
            "ladder": "on" if phase.ladder else "", "ladder_step": phase.ladder_step,
            "quota_counts_failed": "on" if phase.quota_counts_failed else ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def changes(entries, **match):
    return [e for e in entries if all(getattr(e, k) == v for k, v in match.items())]


def test_it_records_a_quota_and_a_visibility_change_made_in_the_admin(client, hosts, phase, challenge):
    client.force_login(hosts["host"])
    response = client.post(f"/admin/challenges/phase/{phase.pk}/change/", phase_form(phase, max_per_day=3))
    assert response.status_code == 302, response.content.decode()[:3000]
    response = client.post(f"/admin/challenges/phase/{phase.pk}/change/",
                           phase_form(Phase.objects.get(pk=phase.pk), visibility="private"))
    assert response.status_code == 302
    entries = audit_entries(challenge=challenge)
    quota = changes(entries, kind="phase", field="max_per_day")
    assert [(e.user, e.old, e.new) for e in quota] == [("hector", "", "3")]  # no limit before
    shown = changes(entries, kind="phase", field="visibility")
    assert [(e.user, e.old, e.new) for e in shown] == [("hector", "public", "private")]
    assert entries.index(shown[0]) < entries.index(quota[0])  # newest first


def test_it_records_a_hide_with_its_reason_and_user_and_a_workers_transitions(hosts, alice, submit, score,
                                                                              challenge):
    submission = score(submit(alice))
    submission_hide(submission=submission, by=hosts["host"], reason="Uses the test annotations")
    entries = audit_entries(challenge=challenge, kind="submission")
    hidden = changes(entries, field="hidden")
    assert [(e.user, e.old, e.new, e.reason) for e in hidden] == [
        ("hector", "False", "True", "hidden: Uses the test annotations")]
    status = changes(entries, field="status")
    assert [(e.user, e.old, e.new) for e in reversed(status)] == [
        ("", "submitted", "validating"), ("", "validating", "scoring"), ("", "scoring", "finished")]
    assert all(e.reason.startswith(("worker", "scored by worker")) for e in status)


def test_it_records_who_created_a_phase_and_hosts(hosts, challenge, organizer):
    phase_create(challenge=challenge, slug="second", name="Second phase")
    created = changes(audit_entries(challenge=challenge, kind="phase"), action="created")
    assert [e.object for e in created] == ["Second phase"]
    assert len(changes(audit_entries(challenge=challenge, kind="host"), action="created")) == 2


def test_the_page_is_filterable_and_only_for_the_challenges_hosts(client, hosts, alice, submit, score, challenge,
                                                                  phase):
    submission = score(submit(alice))
    submission_hide(submission=submission, by=hosts["host"], reason="Spam entry")
    other_phase = phase_create(challenge=hosts["other"], slug="op", name="Phase of the other challenge")
    Phase.objects.filter(pk=other_phase.pk).update(max_total=5)
    other_phase.refresh_from_db()
    other_phase.max_total = 7
    other_phase.save()

    client.force_login(hosts["viewer"])
    assert f'href="/admin/audit/{challenge.pk}/"' in client.get(
        f"/admin/challenges/challenge/{challenge.pk}/change/").content.decode()
    page = client.get(f"/admin/audit/{challenge.pk}/").content.decode()
    assert "hidden: Spam entry" in page and "hector" in page
    assert "Phase of the other challenge" not in page
    only_hector = client.get(f"/admin/audit/{challenge.pk}/?user=hector").content.decode()
    assert "hidden: Spam entry" in only_hector and "scored by worker" not in only_hector
    workers = client.get(f"/admin/audit/{challenge.pk}/?user=-&kind=submission").content.decode()
    assert "scored by worker" in workers and "hidden: Spam entry" not in workers
    assert client.get(f"/admin/audit/{hosts['other'].pk}/").status_code == 404

    client.force_login(hosts["other_host"])
    assert client.get(f"/admin/audit/{challenge.pk}/").status_code == 404
    assert client.get(f"/admin/audit/{challenge.pk}/audit.csv").status_code == 404
    own = client.get(f"/admin/audit/{hosts['other'].pk}/").content.decode()
    assert "Phase of the other challenge" in own and "Spam entry" not in own

    client.force_login(alice)
    assert client.get(f"/admin/audit/{challenge.pk}/").status_code == 302  # to the admin's login


def test_it_exports_the_log_as_csv(client, hosts, alice, submit, score, challenge):
    submission = score(submit(alice))
    submission_hide(submission=submission, by=hosts["host"], reason="Spam, with a comma")
    client.force_login(hosts["viewer"])
    response = client.get(f"/admin/audit/{challenge.pk}/audit.csv?kind=submission")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="audit-egomask.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["kind"] for row in rows} == {"submission"}
    hidden = [row for row in rows if row["field"] == "hidden"]
    assert [(r["user"], r["old"], r["new"], r["reason"]) for r in hidden] == [
        ("hector", "False", "True", "hidden: Spam, with a comma")]
    assert rows[0]["at"] >= rows[-1]["at"]


def test_a_hosts_history_page_shows_only_their_challenges_objects(client, hosts, phase):
    client.force_login(hosts["viewer"])
    page = client.get(f"/admin/challenges/phase/{phase.pk}/history/")
    assert page.status_code == 200 and "Created" in page.content.decode()
    client.force_login(hosts["other_host"])
    assert client.get(f"/admin/challenges/phase/{phase.pk}/history/").status_code == 302  # as a missing row
