"""The organizer's admin: pages load for staff only, and every action goes through its service."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from leaderboard.challenges.models import GroundTruthBundle, Phase
from leaderboard.challenges.tasks import check_ground_truth
from leaderboard.submissions.models import Submission
from leaderboard.submissions.services import submission_cancel

CHANGELISTS = [
    "/admin/challenges/challenge/",
    "/admin/challenges/phase/",
    "/admin/challenges/groundtruthbundle/",
    "/admin/accounts/team/",
    "/admin/submissions/submission/",
]


@pytest.fixture
def staff_client(client, organizer):
    client.force_login(organizer)
    return client


def act(client, url: str, action: str, *objects) -> list[str]:
    """Run a list action with a reason (the moderation actions ask for one, on a page of their own)."""
    response = client.post(url, {"action": action, "_selected_action": [obj.pk for obj in objects],
                                 "reason": "a test", "apply_reason": "Apply"}, follow=True)
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("url", CHANGELISTS)
def test_it_loads_changelists_for_the_organizer(staff_client, url, alice, submit, score):
    score(submit(alice))
    assert staff_client.get(url).status_code == 200


def test_it_loads_change_pages(staff_client, alice, submit, score, phase):
    submission = score(submit(alice))
    team = alice.memberships.get().team
    for url in (f"/admin/submissions/submission/{submission.pk}/change/", f"/admin/accounts/team/{team.pk}/change/",
                f"/admin/challenges/phase/{phase.pk}/change/",
                f"/admin/challenges/challenge/{phase.challenge_id}/change/",
                f"/admin/challenges/groundtruthbundle/{phase.ground_truth_id}/change/",
                "/admin/challenges/groundtruthbundle/add/"):
        assert staff_client.get(url).status_code == 200, url


@pytest.mark.parametrize("url", CHANGELISTS)
def test_it_redirects_non_staff_to_the_login(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_rescores_a_submission(staff_client, alice, submit, score, django_capture_on_commit_callbacks):
    submission = score(submit(alice))
    assert submission.status == Submission.Status.FINISHED
    with django_capture_on_commit_callbacks() as callbacks:
        messages = act(staff_client, "/admin/submissions/submission/", "rescore", submission)
    submission.refresh_from_db()
    assert (submission.attempt, submission.status) == (2, Submission.Status.SUBMITTED)
    assert len(callbacks) == 1  # the scoring task for the new attempt
    assert "1 submission queued for rescoring." in messages


def test_it_reports_why_a_rescore_was_refused(staff_client, alice, submit, score):
    finished = score(submit(alice, method_name="Finished"))
    cancelled = submission_cancel(submission=submit(alice, method_name="Cancelled"), user=alice)
    messages = act(staff_client, "/admin/submissions/submission/", "rescore", finished, cancelled)
    assert f"#{cancelled.pk} Cancelled: A cancelled submission is not rescored." in messages
    assert "1 submission queued for rescoring." in messages
    cancelled.refresh_from_db()
    assert (cancelled.attempt, cancelled.status) == (1, Submission.Status.CANCELLED)


def test_it_hides_and_shows(staff_client, alice, carol, submit):
    first, second = submit(alice), submit(carol)
    messages = act(staff_client, "/admin/submissions/submission/", "hide", first, second)
    assert "2 submissions hidden from the leaderboards." in messages
    assert set(Submission.objects.values_list("hidden", flat=True)) == {True}
    messages = act(staff_client, "/admin/submissions/submission/", "show", first)
    assert "1 submission shown on the leaderboards again." in messages
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.hidden, second.hidden) == (False, True)


def test_it_marks_and_unmarks_baselines(staff_client, alice, submit):
    submission = submit(alice)
    assert "1 submission marked as baseline." in act(staff_client, "/admin/submissions/submission/",
                                                     "mark_baseline", submission)
    submission.refresh_from_db()
    assert submission.is_baseline
    act(staff_client, "/admin/submissions/submission/", "unmark_baseline", submission)
    submission.refresh_from_db()
    assert not submission.is_baseline


def test_it_rescores_all_submissions_of_a_phase(staff_client, alice, carol, submit, score, phase):
    score(submit(alice)), score(submit(carol, quality="noisy"))
    submit(alice, method_name="still queued")  # not finished or failed: left alone
    messages = act(staff_client, "/admin/challenges/phase/", "rescore_all", phase)
    assert "2 submissions of 1 phase queued for rescoring." in messages
    assert sorted(Submission.objects.values_list("attempt", flat=True)) == [1, 2, 2]


def test_it_creates_the_boards_of_a_phase_added_in_the_admin(staff_client, challenge, ground_truth):
    response = staff_client.post("/admin/challenges/phase/add/", {
        "challenge": challenge.pk, "slug": "final", "name": "Final", "order": 2, "accepts_submissions": "on",
        "visibility": "public", "ranking_rule": "best", "primary_metric": "IoU_gold_pred",
        "ground_truth": ground_truth.pk, "bootstrap_samples": 2000, "tie_level": 0.01, "min_bucket_size": 10,
        "ladder": "on", "ladder_step": 0.5, "quota_counts_failed": "on",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    phase = Phase.objects.get(slug="final")
    assert list(phase.splits.values_list("code", flat=True)) == ["short", "medium", "long", "overall"]
    assert (phase.bootstrap_samples, phase.tie_level, phase.ladder, phase.ladder_step, phase.quota_counts_failed) == (
        2000, 0.01, True, 0.5, True)


def test_the_phase_page_shows_the_ladder_statistics_and_quota_fields(staff_client, phase):
    html = staff_client.get(f"/admin/challenges/phase/{phase.pk}/change/").content.decode()
    for field in ("ladder", "ladder_step", "quota_counts_failed", "bootstrap_samples", "tie_level", "min_bucket_size"):
        assert f'name="{field}"' in html, field
    assert "The Ladder" in html


def test_it_creates_the_boards_of_a_phase_added_inline(staff_client, challenge):
    prefix = "phases"
    response = staff_client.post(f"/admin/challenges/challenge/{challenge.pk}/change/", {
        "slug": challenge.slug, "title": challenge.title, "description": "", "is_published": "on",
        "time_zone": "UTC", "created_at_0": "2026-01-01", "created_at_1": "00:00:00",
        "hosts-TOTAL_FORMS": 0, "hosts-INITIAL_FORMS": 0,
        f"{prefix}-TOTAL_FORMS": 1, f"{prefix}-INITIAL_FORMS": 0,
        f"{prefix}-0-slug": "dev", f"{prefix}-0-name": "Dev", f"{prefix}-0-order": 0,
        f"{prefix}-0-accepts_submissions": "on", f"{prefix}-0-visibility": "public",
        f"{prefix}-0-ranking_rule": "best",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Phase.objects.get(challenge=challenge, slug="dev").splits.count() == 4


def test_it_uploads_ground_truth_through_the_service(staff_client, challenge, synthetic, settings, tmp_path,
                                                     django_capture_on_commit_callbacks):
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    upload = SimpleUploadedFile("egomask-v2.zip", synthetic["gt_zip"], content_type="application/zip")
    with mock.patch.object(check_ground_truth, "delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/admin/challenges/groundtruthbundle/add/",
                                     {"challenge": challenge.pk, "name": "v2", "file": upload})
    bundle = GroundTruthBundle.objects.get(name="v2")
    assert response.status_code == 302
    assert response["Location"] == "/admin/challenges/groundtruthbundle/"
    assert bundle.status == GroundTruthBundle.Status.PENDING and len(bundle.sha256) == 64
    delay.assert_called_once_with(bundle.pk)  # the check is queued once the upload commits

    check_ground_truth(bundle.pk)  # what the worker then runs
    bundle.refresh_from_db()
    assert bundle.status == GroundTruthBundle.Status.READY, bundle.message
    assert bundle.summary["short"] == {"videos": 3, "expressions": 5}
    page = staff_client.get(f"/admin/challenges/groundtruthbundle/{bundle.pk}/change/").content.decode()
    assert "short: 3 videos / 5 expressions" in page


def test_it_queues_a_new_check_and_the_worker_says_why_a_bundle_is_invalid(
        staff_client, challenge, ground_truth, django_capture_on_commit_callbacks):
    from leaderboard.challenges.services import ground_truth_create

    with mock.patch.object(check_ground_truth, "delay"):
        broken = ground_truth_create(challenge=challenge, name="broken", file=io.BytesIO(b"not a zip"))
    with mock.patch.object(check_ground_truth, "delay") as delay, django_capture_on_commit_callbacks(execute=True):
        messages = act(staff_client, "/admin/challenges/groundtruthbundle/", "check_again", ground_truth, broken)
    assert "Queued a check of 2 bundles; a worker records the result here (status, version, summary)." in messages
    assert sorted(call.args for call in delay.call_args_list) == sorted([(ground_truth.pk,), (broken.pk,)])
    broken.refresh_from_db()
    assert broken.status == GroundTruthBundle.Status.PENDING

    check_ground_truth(broken.pk)  # what the worker then runs
    broken.refresh_from_db()
    assert broken.status == GroundTruthBundle.Status.INVALID
    assert "not a zip" in broken.message


# The same operations from the command line (manage.py), for organizers without a browser.

def test_it_loads_ground_truth_and_attaches_it(phase, synthetic, tmp_path, organizer):
    archive = tmp_path / "gt-v2.zip"
    archive.write_bytes(synthetic["gt_zip"])
    out = io.StringIO()
    call_command("load_ground_truth", "egomask", str(archive), "--name", "v2", "--attach-phase", "test", stdout=out)
    bundle = GroundTruthBundle.objects.get(name="v2")
    assert bundle.status == GroundTruthBundle.Status.READY
    phase.refresh_from_db()
    # The same zip is the same version: the phase has another bundle row, and nothing is stale to rescore.
    assert phase.ground_truth == bundle
    assert f"Bundle #{bundle.pk} 'v2' is ready" in out.getvalue()
    assert "0 submission(s) queued for rescoring" in out.getvalue()


def test_it_refuses_ground_truth_from_someone_who_does_not_configure_the_challenge(phase, synthetic, tmp_path,
                                                                                  alice):
    archive = tmp_path / "gt-v2.zip"
    archive.write_bytes(synthetic["gt_zip"])
    with pytest.raises(CommandError, match="may not add ground truth to 'egomask'"):
        call_command("load_ground_truth", "egomask", str(archive), "--name", "v2", "--as", "alice",
                     stdout=io.StringIO())
    assert not GroundTruthBundle.objects.filter(name="v2").exists()


def test_it_refuses_an_invalid_ground_truth(challenge, tmp_path, organizer):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="is invalid"):
        call_command("load_ground_truth", "egomask", str(archive), "--name", "broken", stdout=io.StringIO())


def test_it_rescores_a_phase_from_the_command_line(organizer, alice, submit, score, phase):
    submission = score(submit(alice))
    out = io.StringIO()
    call_command("rescore_phase", "egomask", "test", "--user", "organizer", stdout=out)
    submission.refresh_from_db()
    assert (submission.attempt, submission.status) == (2, Submission.Status.SUBMITTED)
    assert out.getvalue().startswith("Queued 1 submission of egomask / Test phase")
    with pytest.raises(CommandError, match="no phase 'nope'"):
        call_command("rescore_phase", "egomask", "nope")
