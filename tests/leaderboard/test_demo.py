"""`manage.py seed_demo`: a working demo in one command, and a second run changes nothing."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from leaderboard.accounts.models import Membership, Team
from leaderboard.challenges.models import Challenge, GroundTruthBundle, Phase, PhaseSplit
from leaderboard.submissions.models import Score, Submission

MODELS = [get_user_model(), Challenge, Phase, PhaseSplit, GroundTruthBundle, Team, Membership, Submission, Score]


@pytest.fixture
def seed(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.GROUND_TRUTH_CACHE_DIR = tmp_path / "gt-cache"

    def run() -> str:
        out = io.StringIO()
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
                      "username: organizer  password: egomask-organizer"]
    User = get_user_model()
    assert User.objects.get(username="participant").check_password("egomask-participant")
    organizer = User.objects.get(username="organizer")
    assert organizer.check_password("egomask-organizer") and organizer.is_staff and organizer.is_superuser


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

    baselines = submissions.filter(is_baseline=True)
    assert baselines.filter(phase__slug="dev").count() == 3 and baselines.filter(phase__slug="test").count() == 1
    assert {s.user.username for s in baselines} == {"organizer"} and not baselines.exclude(team=None).exists()
    assert baselines.filter(method_name="Grounded-SAM2 (reference runner)").count() == 2
    assert all("Synthetic stand-in" in s.method_description for s in baselines)
