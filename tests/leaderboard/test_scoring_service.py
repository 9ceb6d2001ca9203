"""submission_score and what surrounds it: results, failures in plain words, idempotence, stale
attempts, per-expression details, rescoring and cancelling."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections import defaultdict
from pathlib import Path
from unittest import mock

import pytest

from leaderboard.challenges.models import GroundTruthBundle
from leaderboard.challenges.services import ground_truth_check, ground_truth_create, phase_create
from leaderboard.errors import Conflict, NotAllowed
from leaderboard.storage import private_storage
from leaderboard.submissions import grading
from leaderboard.submissions.grading import GROUND_TRUTH_UNAVAILABLE, submission_retry, submission_score
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.selectors import per_video_results
from leaderboard.submissions.services import phase_rescore, submission_cancel, submission_create, submission_rescore
from scoring import METRICS, SCORER_VERSION, evaluate, load_ground_truth

from .conftest import scoring_tasks_sent

SPLITS = ("short", "medium", "long", "overall")
Status = Submission.Status


def _scores(submission: Submission) -> dict[str, dict[str, float]]:
    return {s.split: s.metrics() for s in Score.objects.filter(submission=submission)}


def _upload(phase, user, data: bytes, method_name: str = "M") -> Submission:
    return submission_create(phase=phase, user=user, file=io.BytesIO(data), method_name=method_name)


def _without_first_expression(data: bytes) -> tuple[bytes, str]:
    """The same predictions with one expression's file left out, and that file's path."""
    source = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(n for n in source.namelist() if n.startswith("short/"))
    dropped = names[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            if name != dropped:
                target.writestr(name, source.read(name))
    return buffer.getvalue(), dropped


def _rle_file(gt_dir: Path, split: str, index: int, counts: str) -> tuple[str, bytes, str]:
    """(path in the zip, JSON bytes, frame) of one expression's RLE file with the given counts."""
    gt = load_ground_truth(gt_dir)
    expression = list(gt.expressions((split,)))[index]
    video = gt.videos[expression.video]
    frame = video.frames[0]
    path = f"{split}/{expression.video}/{expression.exp_id}/{expression.exp_id}-{expression.obj_id}.json"
    body = json.dumps({frame: {"size": [video.height, video.width], "counts": counts}}).encode()
    return path, body, frame


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


# --- results --------------------------------------------------------------------------------


def test_it_scores_perfect_predictions_100_everywhere(alice, submit, score, ground_truth):
    submission = score(submit(alice, quality="perfect"))

    assert submission.status == Status.FINISHED, submission.failure_message
    assert submission.failure_message == ""
    assert submission.problems == []
    assert submission.scorer_version == SCORER_VERSION
    assert submission.gt_version == ground_truth.version != ""
    assert submission.started_at is not None
    assert submission.finished_at >= submission.started_at
    assert submission.scoring_seconds >= 0
    rows = {s.split: s for s in submission.scores.all()}
    assert sorted(rows) == sorted(SPLITS)
    for split, row in rows.items():
        assert row.metrics() == {m: 100.0 for m in METRICS}, split
        assert row.scorer_version == SCORER_VERSION
        assert row.gt_version == ground_truth.version
    for split in ("short", "medium", "long"):
        assert rows[split].n_expressions == ground_truth.summary[split]["expressions"]
    assert rows["overall"].n_expressions == sum(ground_truth.summary[s]["expressions"]
                                                for s in ("short", "medium", "long"))


@pytest.mark.parametrize("quality", ["good", "noisy"])
def test_it_stores_the_numbers_the_scoring_library_computes(alice, submit, score, synthetic, prediction_zip,
                                                           tmp_path, quality):
    submission = score(submit(alice, quality=quality))
    local = tmp_path / "predictions.zip"
    local.write_bytes(prediction_zip(quality))
    direct = evaluate(load_ground_truth(synthetic["gt_dir"]), local)

    assert submission.status == Status.FINISHED, submission.failure_message
    assert _scores(submission) == direct.as_dict()
    assert {s.split: s.n_expressions for s in submission.scores.all()} == {
        split: summary.n_expressions for split, summary in direct.summaries.items()}
    assert submission.gt_version == direct.gt_version
    # A real difference from perfect, so the comparison above is not trivially 100 == 100.
    assert _scores(submission)["overall"]["IoU_gold_pred"] < 100.0


def test_it_does_nothing_on_a_second_call_for_the_same_attempt(alice, submit, score):
    submission = score(submit(alice, quality="good"))
    before = list(Score.objects.filter(submission=submission).order_by("split").values())

    assert submission_score(submission_id=submission.pk, attempt=submission.attempt) is None

    assert list(Score.objects.filter(submission=submission).order_by("split").values()) == before
    assert Submission.objects.get(pk=submission.pk).finished_at == submission.finished_at


def test_it_ignores_a_stale_attempt_after_a_rescore(organizer, alice, submit, score):
    submission = score(submit(alice, quality="good"))
    rescored = submission_rescore(submission=submission, by=organizer, reason="a test")
    assert rescored.attempt == 2

    assert submission_score(submission_id=submission.pk, attempt=1) is None

    current = Submission.objects.get(pk=submission.pk)
    assert (current.status, current.attempt, current.started_at) == (Status.SUBMITTED, 2, None)
    assert score(current).status == Status.FINISHED


def test_it_drops_the_results_of_an_attempt_superseded_while_it_ran(alice, submit):
    submission = submit(alice, quality="good")
    real_evaluate = grading.evaluate

    def evaluate_then_get_superseded(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        # Meanwhile the reconciler decided this worker was lost and started attempt 2.
        assert submission_retry(submission_id=submission.pk, attempt=1) is not None
        return result

    with mock.patch.object(grading, "evaluate", side_effect=evaluate_then_get_superseded):
        submission_score(submission_id=submission.pk, attempt=1)

    current = Submission.objects.get(pk=submission.pk)
    assert (current.status, current.attempt) == (Status.SUBMITTED, 2)
    assert Score.objects.filter(submission=submission).count() == 0
    assert not current.details


# --- failures in plain words ----------------------------------------------------------------


def test_it_reads_the_submission_once(alice, submit, score):
    # One pass: evaluate() finds every problem or scores; nothing else opens the zip.
    with mock.patch.object(grading, "evaluate", wraps=grading.evaluate) as evaluate_once:
        submission = score(submit(alice, quality="good"))
    assert submission.status == Status.FINISHED
    assert evaluate_once.call_count == 1
    assert not hasattr(grading, "validate_submission")


def test_it_fails_malformed_rle_with_a_plain_message_and_the_problems(alice, phase, synthetic, score):
    path, body, frame = _rle_file(synthetic["gt_dir"], "short", 0, "!!!not-rle")
    submission = score(_upload(phase, alice, _zip({path: body})))

    assert submission.status == Status.FAILED
    message = submission.failure_message
    assert message.startswith("Your submission could not be scored: ")
    assert path in message
    assert "malformed RLE" in message
    assert "Traceback" not in message and "Error" not in message
    assert submission.problems == [{
        "code": "malformed_rle",
        "message": "malformed RLE: the counts string has an invalid character '!'",
        "location": {"file": path, "split": "short", "video": path.split("/")[1],
                     "expression": path.split("/")[2], "frame": frame},
    }]
    assert submission.finished_at is not None
    assert Score.objects.filter(submission=submission).count() == 0


def test_it_lists_every_problem_and_says_how_many_more(alice, phase, synthetic, score):
    first = _rle_file(synthetic["gt_dir"], "short", 0, "!bad")
    second = _rle_file(synthetic["gt_dir"], "short", 1, "zzzz")
    submission = score(_upload(phase, alice, _zip({first[0]: first[1], second[0]: second[1]})))

    assert submission.status == Status.FAILED
    assert [p["code"] for p in submission.problems] == ["malformed_rle", "malformed_rle"]
    assert {p["location"]["file"] for p in submission.problems} == {first[0], second[0]}
    assert submission.failure_message.endswith("(and 1 more problem).")  # the list itself is in `problems`


def test_it_fails_a_damaged_zip_in_plain_words(alice, phase, score):
    submission = score(_upload(phase, alice, b"PK\x03\x04" + b"not really a zip" * 4))
    assert submission.status == Status.FAILED
    assert submission.failure_message.startswith("Your submission could not be scored: ")
    assert "not a zip archive" in submission.failure_message
    assert [p["code"] for p in submission.problems] == ["not_a_zip"]


def test_it_fails_a_zip_without_predictions(alice, phase, score):
    submission = score(_upload(phase, alice, _zip({"README.txt": b"hello"})))
    assert submission.status == Status.FAILED
    assert "found no predictions" in submission.failure_message
    assert [p["code"] for p in submission.problems] == ["bad_layout"]


def test_it_finishes_with_warnings_when_expressions_are_missing(alice, phase, prediction_zip, score):
    data, dropped = _without_first_expression(prediction_zip("perfect"))
    submission = score(_upload(phase, alice, data))

    assert submission.status == Status.FINISHED, submission.failure_message
    codes = [w["code"] for w in submission.warnings]
    assert codes == ["missing_expressions"]
    assert submission.warnings[0]["location"] == {"split": "short"}
    scores = _scores(submission)
    short = Score.objects.get(submission=submission, split="short").n_expressions
    # One of the short expressions scores 0 on T_recall, every other one 100.
    assert scores["short"]["T_recall"] == pytest.approx(100.0 * (short - 1) / short)
    assert scores["medium"]["T_recall"] == 100.0
    assert scores["long"]["T_recall"] == 100.0
    missing = [r for r in _details(submission) if r["missing"] == "1"]
    assert [f"{r['split']}/{r['video']}/{r['exp_id']}" for r in missing] == ["/".join(dropped.split("/")[:3])]


def test_it_fails_when_the_phase_has_no_ground_truth(alice, challenge, submit, score):
    bare = phase_create(challenge=challenge, slug="bare", name="No GT yet")
    submission = score(submit(alice, phase=bare))
    assert submission.status == Status.FAILED
    assert submission.failure_message == GROUND_TRUTH_UNAVAILABLE
    assert "does not count against your quota" in submission.failure_message
    assert submission.problems == []
    assert Score.objects.filter(submission=submission).count() == 0


def test_it_fails_when_the_phase_ground_truth_is_invalid(alice, challenge, submit, score):
    bundle = ground_truth_create(challenge=challenge, name="broken", file=io.BytesIO(_zip({"README": b"x"})))
    bundle = ground_truth_check(bundle_id=bundle.pk)
    assert bundle.status == GroundTruthBundle.Status.INVALID
    broken = phase_create(challenge=challenge, slug="broken", name="Broken GT", ground_truth=bundle)

    submission = score(submit(alice, phase=broken))

    assert submission.status == Status.FAILED
    assert submission.failure_message == GROUND_TRUTH_UNAVAILABLE
    assert Score.objects.filter(submission=submission).count() == 0


def test_it_fails_cleanly_when_an_unchecked_ground_truth_cannot_be_loaded(alice, challenge, submit, score):
    # Attached before a worker checked it (status pending), and broken: scoring must end, not hang.
    bundle = ground_truth_create(challenge=challenge, name="unchecked", file=io.BytesIO(_zip({"README": b"x"})))
    assert bundle.status == GroundTruthBundle.Status.PENDING
    phase = phase_create(challenge=challenge, slug="unchecked", name="Unchecked GT", ground_truth=bundle)

    submission = score(submit(alice, phase=phase))

    assert submission.status == Status.FAILED
    assert submission.failure_message == GROUND_TRUTH_UNAVAILABLE


# --- per-expression details ------------------------------------------------------------------


def _details(submission: Submission) -> list[dict[str, str]]:
    with submission.details.open("rb") as handle:
        return list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")))


def test_it_stores_per_expression_results_privately(alice, submit, score, synthetic, prediction_zip, tmp_path,
                                                    phase):
    submission = score(submit(alice, quality="noisy"))
    local = tmp_path / "p.zip"
    local.write_bytes(prediction_zip("noisy"))
    direct = evaluate(load_ground_truth(synthetic["gt_dir"]), local)

    assert submission.details.name.startswith(f"results/{phase.pk}/{submission.pk}-")
    assert private_storage().exists(submission.details.name)
    rows = _details(submission)
    assert len(rows) == len(direct.expressions) == Score.objects.get(submission=submission,
                                                                     split="overall").n_expressions
    expected = [{k: str(v) for k, v in e.as_row().items()} for e in direct.expressions]
    assert rows == expected


def test_it_reads_per_video_results_from_the_stored_details(alice, submit, score, synthetic, prediction_zip,
                                                            tmp_path):
    submission = score(submit(alice, quality="noisy"))
    local = tmp_path / "p.zip"
    local.write_bytes(prediction_zip("noisy"))
    direct = evaluate(load_ground_truth(synthetic["gt_dir"]), local)
    grouped = defaultdict(list)
    for row in direct.expressions:
        grouped[(row.split, row.video)].append(row)

    results = {(r.split, r.video): r for r in per_video_results(submission=submission)}

    assert sorted(results) == sorted(grouped)
    for key, rows in grouped.items():
        result = results[key]
        assert result.expressions == len(rows)
        assert result.missing == sum(r.missing for r in rows)
        for metric in METRICS:
            mean = 100 * math.fsum(r.scores.metric(metric) for r in rows) / len(rows)
            assert result.scores[metric] == pytest.approx(mean, abs=1e-9), (key, metric)


def test_it_has_no_per_video_results_before_scoring(alice, submit):
    assert per_video_results(submission=submit(alice)) == []


# --- rescore ---------------------------------------------------------------------------------


def test_it_rescores_as_a_new_attempt_and_replaces_the_scores(organizer, alice, submit, score,
                                                              django_capture_on_commit_callbacks):
    submission = score(submit(alice, quality="good"))
    true_scores = _scores(submission)
    Score.objects.filter(submission=submission).update(IoU_gold_pred=1.0, T_recall=2.0, gt_version="old")

    with scoring_tasks_sent() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        rescored = submission_rescore(submission=submission, by=organizer, reason="a test")
    delay.assert_called_once_with(submission.pk, 2)
    assert (rescored.status, rescored.attempt) == (Status.SUBMITTED, 2)
    assert (rescored.started_at, rescored.finished_at) == (None, None)

    rescored = score(rescored)
    assert rescored.status == Status.FINISHED
    assert _scores(rescored) == true_scores
    assert Score.objects.filter(submission=submission).count() == len(SPLITS)
    assert set(Score.objects.filter(submission=submission).values_list("gt_version", flat=True)) == {
        rescored.gt_version}


def test_it_rescores_a_failed_submission_once_the_ground_truth_is_attached(organizer, alice, challenge, submit, score,
                                                                           ground_truth):
    bare = phase_create(challenge=challenge, slug="bare", name="No GT yet")
    failed = score(submit(alice, phase=bare, quality="perfect"))
    assert failed.status == Status.FAILED
    bare.ground_truth = ground_truth
    bare.save()

    rescored = submission_rescore(submission=failed, by=organizer, reason="a test")
    assert (rescored.status, rescored.failure_message, rescored.problems) == (Status.SUBMITTED, "", [])
    finished = score(rescored)
    assert finished.status == Status.FINISHED
    assert _scores(finished)["overall"] == {m: 100.0 for m in METRICS}


def test_it_does_not_rescore_a_cancelled_submission(organizer, alice, submit):
    submission = submit(alice)
    submission_cancel(submission=submission, user=alice)
    with pytest.raises(Conflict):
        submission_rescore(submission=submission, by=organizer, reason="a test")
    current = Submission.objects.get(pk=submission.pk)
    assert (current.status, current.attempt) == (Status.CANCELLED, 1)


def test_it_rescores_the_finished_and_failed_submissions_of_a_phase(organizer, alice, carol, submit, score, phase,
                                                                    django_capture_on_commit_callbacks):
    finished = score(submit(alice, quality="good"))
    failed = submit(carol)
    Submission.objects.filter(pk=failed.pk).update(status=Status.FAILED, failure_message="boom")
    cancelled = submit(carol)
    submission_cancel(submission=cancelled, user=carol)
    queued = submit(alice)

    with scoring_tasks_sent() as delay, \
            django_capture_on_commit_callbacks(execute=True):
        assert phase_rescore(phase=phase, by=organizer, reason="a test") == 2
    assert sorted(c.args for c in delay.call_args_list) == sorted([(finished.pk, 2), (failed.pk, 2)])

    state = {s.pk: (s.status, s.attempt) for s in Submission.objects.all()}
    assert state == {
        finished.pk: (Status.SUBMITTED, 2),
        failed.pk: (Status.SUBMITTED, 2),
        cancelled.pk: (Status.CANCELLED, 1),
        queued.pk: (Status.SUBMITTED, 1),
    }
    assert Submission.objects.get(pk=failed.pk).failure_message == ""
    for pk in (finished.pk, failed.pk):
        assert score(Submission.objects.get(pk=pk)).status == Status.FINISHED
    assert Score.objects.filter(submission_id=finished.pk).count() == len(SPLITS)
    assert Score.objects.filter(submission_id=failed.pk).count() == len(SPLITS)


# --- cancel ----------------------------------------------------------------------------------


def test_it_lets_a_teammate_cancel_and_the_queued_task_then_does_nothing(alice, bob, submit):
    submission = submit(alice)
    cancelled = submission_cancel(submission=submission, user=bob)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.finished_at is not None

    assert submission_score(submission_id=submission.pk, attempt=1) is None
    assert Submission.objects.get(pk=submission.pk).status == Status.CANCELLED
    assert Score.objects.filter(submission=submission).count() == 0


def test_it_lets_an_organizer_cancel(alice, organizer, submit):
    assert submission_cancel(submission=submit(alice), user=organizer).status == Status.CANCELLED


@pytest.mark.parametrize("persona", ["carol", "eve"])
def test_it_refuses_cancelling_to_other_teams_and_outsiders(request, alice, submit, persona):
    submission = submit(alice)
    with pytest.raises(NotAllowed):
        submission_cancel(submission=submission, user=request.getfixturevalue(persona))
    assert Submission.objects.get(pk=submission.pk).status == Status.SUBMITTED


@pytest.mark.parametrize("status", [Status.FINISHED, Status.FAILED, Status.CANCELLED])
def test_it_only_cancels_active_submissions(alice, submit, status):
    submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(status=status)
    with pytest.raises(Conflict, match=str(status)):
        submission_cancel(submission=submission, user=alice)
    assert Submission.objects.get(pk=submission.pk).status == status


def test_it_keeps_a_cancel_that_happens_while_scoring(alice, submit):
    submission = submit(alice, quality="good")
    real_evaluate = grading.evaluate

    def evaluate_then_cancel(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        submission_cancel(submission=Submission.objects.get(pk=submission.pk), user=alice)
        return result

    with mock.patch.object(grading, "evaluate", side_effect=evaluate_then_cancel):
        submission_score(submission_id=submission.pk, attempt=1)

    assert Submission.objects.get(pk=submission.pk).status == Status.CANCELLED
    assert Score.objects.filter(submission=submission).count() == 0
