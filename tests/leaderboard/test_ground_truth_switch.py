"""Ground-truth versions: switching a phase to a new bundle (phase_set_ground_truth, through the command, the
challenge file and the admin) rescores its submissions as new attempts, idempotently; the board keeps the old
scores, marked rescoring, until the new ones are in; the score history keeps every score set. Real scoring
of the synthetic benchmark against two ground truths with different masks."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from leaderboard.challenges.challengefile.apply import challenge_apply
from leaderboard.challenges.challengefile.export import challenge_export
from leaderboard.challenges.models import Challenge, GroundTruthBundle, Phase
from leaderboard.challenges.services import ground_truth_check, ground_truth_create
from leaderboard.errors import ApplicationError, NotAllowed
from leaderboard.submissions import grading
from leaderboard.submissions.models import ScoreHistory, Submission
from leaderboard.submissions.rescoring import phase_set_ground_truth
from leaderboard.submissions.selectors import board_get, score_history

from .conftest import PASSWORD, zip_tree

Status = Submission.Status


def _fewer_masks(gt_dir: Path, target: Path) -> Path:
    """The benchmark with every second annotated frame of every object dropped: other masks, same videos."""
    shutil.copytree(gt_dir, target)
    for path in sorted((target / "annotations").rglob("*.json")):
        masks = json.loads(path.read_text())
        path.write_text(json.dumps({frame: rle for index, (frame, rle) in enumerate(sorted(masks.items()))
                                    if index % 2 == 0}))
    return target


@pytest.fixture
def v2(challenge, synthetic, tmp_path, ground_truth):
    data = zip_tree(_fewer_masks(synthetic["gt_dir"], tmp_path / "gt-v2"))
    bundle = ground_truth_create(challenge=challenge, name="tiny v2", file=io.BytesIO(data), filename="gt-v2.zip")
    bundle = ground_truth_check(bundle_id=bundle.pk)
    assert bundle.status == GroundTruthBundle.Status.READY and bundle.version != ground_truth.version
    return bundle


@pytest.fixture
def scored(phase, alice, carol, submit, score):
    """Two teams' submissions, scored against v1."""
    return [score(submit(alice, "good", method_name="Good")), score(submit(carol, "noisy", method_name="Noisy"))]


def overall(phase: Phase) -> dict[str, tuple[float, bool]]:
    """method -> (primary metric, rescoring) on the served overall board."""
    return {row.method: (row.scores[phase.primary_metric], row.rescoring)
            for row in board_get(phase=phase, split="overall").rows}


def test_it_rescores_keeping_the_old_scores_on_the_board_until_the_new_ones_are_in(phase, scored, v2, organizer,
                                                                                  ground_truth, score):
    before = overall(phase)
    assert {method: rescoring for method, (_, rescoring) in before.items()} == {"Good": False, "Noisy": False}

    switch = phase_set_ground_truth(phase=phase, bundle=v2, by=organizer)
    assert (switch.changed, switch.rescored) == (True, 2)
    good, noisy = (Submission.objects.get(pk=s.pk) for s in scored)
    assert (good.status, good.attempt, noisy.attempt) == (Status.SUBMITTED, 2, 2)
    # While they are scored again the board shows the v1 numbers, and says so.
    assert overall(phase) == {method: (value, True) for method, (value, _) in before.items()}
    body = Client().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=overall").json()
    assert {row["method"]: row["rescoring"] for row in body["rows"]} == {"Good": True, "Noisy": True}
    page = Client().get("/challenges/egomask/phases/test/leaderboard/overall/").content.decode()
    assert page.count('class="badge rescoring"') == 2

    score(good)
    half = overall(phase)
    assert half["Noisy"] == (before["Noisy"][0], True)  # still v1 until its own attempt is in
    assert half["Good"][1] is False and half["Good"][0] != before["Good"][0]
    score(noisy)
    after = overall(phase)
    assert all(not rescoring for _, rescoring in after.values())
    assert after["Noisy"][0] != before["Noisy"][0]
    assert {s.gt_version for s in Submission.objects.filter(pk__in=[good.pk, noisy.pk])} == {v2.version}

    # The history has both score sets, newest first.
    history = score_history(submission=Submission.objects.get(pk=good.pk))
    assert [(h.attempt, h.gt_version) for h in history] == [(2, v2.version), (1, ground_truth.version)]
    assert history[0].scores["overall"][phase.primary_metric] == pytest.approx(after["Good"][0])
    assert history[1].scores["overall"][phase.primary_metric] == pytest.approx(before["Good"][0])
    assert list(history[0].scores) == ["short", "medium", "long", "overall"]


def test_a_repeated_switch_or_a_redelivered_task_scores_nothing_twice(phase, scored, v2, organizer, score):
    phase_set_ground_truth(phase=phase, bundle=v2, by=organizer)
    again = phase_set_ground_truth(phase=Phase.objects.get(pk=phase.pk), bundle=v2, by=organizer)
    assert (again.changed, again.rescored) == (False, 0)
    good = Submission.objects.get(pk=scored[0].pk)
    assert good.attempt == 2
    # The first attempt's message delivered again: not ours to run.
    assert grading.submission_score(submission_id=good.pk, attempt=1) is None
    score(good)
    assert grading.submission_score(submission_id=good.pk, attempt=2) is None
    assert ScoreHistory.objects.filter(submission=good).count() == 8  # two attempts x four boards


def test_switching_back_skips_what_is_already_scored_against_that_version(phase, scored, v2, organizer, ground_truth,
                                                                          score):
    phase_set_ground_truth(phase=phase, bundle=v2, by=organizer)
    good = score(Submission.objects.get(pk=scored[0].pk))  # Noisy is still being scored when we switch back
    back = phase_set_ground_truth(phase=Phase.objects.get(pk=phase.pk), bundle=ground_truth, by=organizer)
    assert back.rescored == 1  # Good (scored against v2); Noisy was waiting and loads v1 when it is claimed
    assert Submission.objects.get(pk=good.pk).attempt == 3


def test_a_failed_rescore_leaves_the_board(phase, scored, v2, organizer):
    phase_set_ground_truth(phase=phase, bundle=v2, by=organizer)
    good = Submission.objects.get(pk=scored[0].pk)
    grading.submission_fail_internal(submission_id=good.pk, attempt=good.attempt, reason="Storage was down.")
    assert set(overall(phase)) == {"Noisy"}
    assert [h.attempt for h in score_history(submission=good)] == [1]  # the v1 scores are kept in the history


def test_it_refuses_a_bundle_that_is_not_ready_or_of_another_challenge(phase, organizer, synthetic, alice):
    pending = ground_truth_create(challenge=phase.challenge, name="unchecked", file=io.BytesIO(synthetic["gt_zip"]),
                                  queue_check=False)
    with pytest.raises(ApplicationError, match="The ground truth 'unchecked' is pending"):
        phase_set_ground_truth(phase=phase, bundle=pending, by=organizer)
    other = Challenge.objects.create(slug="other", title="Other")
    foreign = ground_truth_check(bundle_id=ground_truth_create(challenge=other, name="foreign",
                                                               file=io.BytesIO(synthetic["gt_zip"])).pk)
    with pytest.raises(ApplicationError, match="belongs to another challenge"):
        phase_set_ground_truth(phase=phase, bundle=foreign, by=organizer)
    with pytest.raises(NotAllowed):
        phase_set_ground_truth(phase=phase, bundle=pending, by=alice)


def test_the_command_switches_and_a_second_run_says_no_changes(phase, scored, v2, organizer):
    out = io.StringIO()
    call_command("set_ground_truth", "--phase", "egomask/test", v2.version[:12], stdout=out)
    assert out.getvalue().strip() == (f"egomask / Test phase now scores with 'tiny v2' ({v2.version[:12]}); 2 "
                                      "submission(s) queued for rescoring. The boards keep their scores until the "
                                      "new ones are in.")
    out = io.StringIO()
    call_command("set_ground_truth", "--phase", "egomask/test", "tiny v2", stdout=out)
    assert "already scores with 'tiny v2'" in out.getvalue() and "no changes" in out.getvalue()
    with pytest.raises(CommandError, match="egomask has no ground-truth bundle 'v3'"):
        call_command("set_ground_truth", "--phase", "egomask/test", "v3")


def test_the_challenge_file_switches_the_ground_truth_and_rescores(phase, scored, v2, organizer, tmp_path):
    exported = challenge_export(challenge=phase.challenge)
    edited = exported.replace(phase.ground_truth.version, v2.version)
    dry = challenge_apply(text=edited, base_dir=tmp_path, by=organizer, dry_run=True)
    assert [line for c in dry.changes for line in c.lines()] == [
        "phase test: changed (2 submission(s) to rescore against the new ground truth)",
        f"    ground_truth: 'tiny v1' {phase.ground_truth.version[:12]} → 'tiny v2' {v2.version[:12]}"]
    assert Submission.objects.filter(status=Status.FINISHED).count() == 2
    challenge_apply(text=edited, base_dir=tmp_path, by=organizer)
    assert Submission.objects.filter(status=Status.SUBMITTED, attempt=2).count() == 2
    assert challenge_apply(text=edited, base_dir=tmp_path, by=organizer).text() == "egomask: no changes."


def test_the_submission_page_and_api_show_the_score_history(phase, scored, v2, organizer, ground_truth, score, alice):
    phase_set_ground_truth(phase=phase, bundle=v2, by=organizer)
    good = score(Submission.objects.get(pk=scored[0].pk))
    client = Client()
    client.login(username="alice", password=PASSWORD)
    page = client.get(f"/submissions/{good.pk}/").content.decode()
    assert "Score history" in page
    assert f'title="{v2.version}"' in page and f'title="{ground_truth.version}"' in page
    body = client.get(f"/api/v1/submissions/{good.pk}/").json()
    assert [(h["attempt"], h["gt_version"]) for h in body["score_history"]] == [(2, v2.version),
                                                                              (1, ground_truth.version)]
    assert set(body["score_history"][0]["scores"]) == {"short", "medium", "long", "overall"}


def test_the_admin_phase_form_goes_through_the_switch(phase, scored, v2, organizer):
    client = Client()
    client.force_login(organizer)
    url = f"/admin/challenges/phase/{phase.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"challenge": phase.challenge_id, "ground_truth": v2.pk, "visibility": phase.visibility,
                 "ranking_rule": phase.ranking_rule, "primary_metric": phase.primary_metric})
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200, response.content[:2000]
    assert "2 submissions queued for rescoring against the new ground truth" in response.content.decode()
    assert Phase.objects.get(pk=phase.pk).ground_truth == v2
    assert Submission.objects.filter(status=Status.SUBMITTED, attempt=2).count() == 2


def test_the_migration_starts_the_history_with_the_scores_already_stored(phase, scored):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("leaderboard.submissions.migrations.0006_score_history_board_rescoring")
    ScoreHistory.objects.all().delete()  # as before the migration: scores, no history
    migration.copy_current_scores(apps, None)
    good = Submission.objects.get(pk=scored[0].pk)
    rows = {(h.attempt, h.split, h.gt_version, h.IoU_gold_pred) for h in ScoreHistory.objects.filter(submission=good)}
    assert rows == {(1, s.split, s.gt_version, s.IoU_gold_pred) for s in good.scores.all()}
    assert len(rows) == 4
