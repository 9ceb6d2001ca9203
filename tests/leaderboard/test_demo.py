"""`manage.py seed_demo`: a working demo in one command, and a second run changes nothing."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import TestCase

from leaderboard.accounts.models import Membership, Team
from leaderboard.baselines.models import BaselineRun, ReportedResult, ShardRun
from leaderboard.celery import app as celery_app
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.challenges.models import Challenge, GroundTruthBundle, Phase, PhaseSplit
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.selectors import leaderboard_rows

MODELS = [get_user_model(), Challenge, Phase, PhaseSplit, GroundTruthBundle, Team, Membership, Submission, Score,
          BaselineRun, ShardRun, ReportedResult]


@pytest.fixture
def seed(db, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path / "var"
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"
    settings.BASELINE_FRAMES_DIR = tmp_path / "frames"
    settings.BASELINE_WORK_DIR = tmp_path / "baseline-runs"

    def run() -> str:
        out = io.StringIO()
        # The seed's own transaction commits here as the test's is rolled back: run what waits for the
        # commit, but keep its scoring messages (which would find the work done) off the broker.
        monkeypatch.setattr(celery_app, "send_task", lambda *args, **kwargs: None)
        with TestCase.captureOnCommitCallbacks(execute=True):
            call_command("seed_demo", "--scale", "tiny", "--force", stdout=out)
        return out.getvalue()

    return run


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_it_refuses_a_shared_database_without_force(db):
    with pytest.raises(CommandError, match="published passwords"):
        call_command("seed_demo", "--scale", "tiny", stdout=io.StringIO())
    assert not Challenge.objects.exists()


def test_it_prints_the_logins_participant_first(seed):
    lines = seed().splitlines()
    logins = [line for line in lines if line.startswith("username: ")]
    assert logins == ["username: participant  password: egomask-participant",
                      "username: organizer  password: egomask-organizer",
                      "username: host  password: egomask-host"]
    User = get_user_model()
    assert User.objects.get(username="participant").check_password("egomask-participant")
    organizer = User.objects.get(username="organizer")
    assert organizer.check_password("egomask-organizer") and organizer.is_staff and organizer.is_superuser
    # The host runs the demo challenge through its Host row, not as staff.
    host = User.objects.get(username="host")
    assert host.check_password("egomask-host") and not host.is_staff
    challenge = Challenge.objects.get(slug="egomask")
    assert organizer_can(host, challenge, Can.CONFIGURE) and not organizer_can(host, challenge, Can.MANAGE_HOSTS)


def test_it_seeds_once(seed):
    seed()
    before = counts()
    output = seed()
    assert counts() == before
    assert "Submissions: 0 new" in output
    assert before["Challenge"] == 1 and before["Phase"] == 2 and before["GroundTruthBundle"] == 1


def test_it_seeds_the_challenge_and_phases(seed):
    seed()
    challenge = Challenge.objects.get(slug="egomask")
    assert challenge.title == "EgoMask: fine-grained spatiotemporal grounding in egocentric video"
    dev, test = challenge.phases.get(slug="dev"), challenge.phases.get(slug="test")
    assert dev.is_open() and test.is_open()
    assert (dev.visibility, dev.ranking_rule, dev.max_per_day, dev.max_total, dev.show_expression_details) == \
        ("public", "best", 5, 100, True)
    assert (test.visibility, test.ranking_rule, test.max_per_day, test.max_total) == ("private", "latest", 2, 20)
    assert not test.is_revealed() and test.reveal_at is not None
    assert dev.ground_truth.status == GroundTruthBundle.Status.READY
    assert dev.splits.count() == test.splits.count() == 4


def test_it_scores_the_submissions_and_adds_baselines(seed):
    seed()
    submissions = Submission.objects.all()
    failed = submissions.filter(status=Submission.Status.FAILED)
    # One deliberate mistake (zipped without the split folders) shows what a failure looks like.
    assert [s.method_name for s in failed] == ["FrameByFrame"]
    assert "are at the top level of the zip, not in a split folder; put them in full/" in failed.get().failure_message
    finished = submissions.exclude(pk=failed.get().pk)
    assert {s.status for s in finished} == {Submission.Status.FINISHED}
    for submission in finished:
        assert sorted(submission.scores.values_list("split", flat=True)) == ["long", "medium", "overall", "short"]
    overall = {s.method_name: s.scores.get(split="overall").IoU_gold_pred
               for s in finished.filter(phase__slug="dev", is_baseline=False)}
    assert overall["TrackAnything-ego v2"] > overall["TrackAnything-ego v1"] > overall["Empty sanity check"] == 0

    # The baselines are the weight-free runners' real output on the demo's frames, not stand-ins.
    baselines = submissions.filter(is_baseline=True)
    assert sorted(baselines.filter(phase__slug="dev").values_list("method_name", flat=True)) == [
        "colour (reference runner)", "empty (reference runner)"]
    assert list(baselines.filter(phase__slug="test").values_list("method_name", flat=True)) == [
        "empty (reference runner)"]
    assert {s.user.username for s in baselines} == {"organizer"} and not baselines.exclude(team=None).exists()
    assert not submissions.filter(method_description__contains="stand-in").exists()
    runs = BaselineRun.objects.all()
    assert {(r.phase.slug, r.runner, r.status) for r in runs} == {
        ("dev", "empty", "finished"), ("dev", "colour", "finished"), ("test", "empty", "finished")}
    assert {r.submission_id for r in runs} == set(baselines.values_list("pk", flat=True))
    dev = Phase.objects.get(slug="dev")
    overall = {r.method: r for r in leaderboard_rows(phase=dev, split="overall").rows}
    assert overall["empty (reference runner)"].scores["IoU_gold_pred"] == 0.0
    # The colour runner finds the synthetic objects by the colour its expression names: better than nothing.
    assert overall["colour (reference runner)"].scores["IoU_gold_pred"] > 0.0
    assert overall["colour (reference runner)"].baseline == {"kind": "runner", "runner": "colour",
                                                             "version": "1.0.0", "run": runs.get(
                                                                 phase=dev, runner="colour").pk}


def test_it_renders_the_frames_where_the_runners_read_them(seed, settings):
    seed()
    frames = settings.BASELINE_FRAMES_DIR / "JPEGImages"
    assert sorted(p.name for p in frames.iterdir()) and all(any(p.glob("*.jpg")) for p in frames.iterdir())
    assert not (settings.VAR_DIR / "demo" / "gt" / "JPEGImages").exists()  # the ground truth zip holds no frames


def test_it_imports_the_papers_numbers_as_reported_rows(seed):
    seed()
    dev = Phase.objects.get(slug="dev")
    assert ReportedResult.objects.filter(phase=dev).count() == 6
    short = leaderboard_rows(phase=dev, split="short", include_reported=True).rows
    gsam = next(r for r in short if r.method == "Grounded-SAM2")
    assert gsam.rank is None and gsam.baseline["kind"] == "reported"
    assert gsam.scores == {"T_recall": None, "IoU_all": None, "IoU_gold": None, "IoU_gold_pred": 49.95}
