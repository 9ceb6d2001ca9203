"""Baseline runs through the services a worker runs: shards, assembly into one baseline submission,
scoring, the board's provenance, replacement of an earlier run, resume, leases, failures, and who may
queue a run. The chord itself runs in test_baseline_worker.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase
from django.utils import timezone

from leaderboard.baselines import dispatch
from leaderboard.challenges.models import Phase
from leaderboard.baselines.models import BaselineRun, ShardRun
from leaderboard.baselines.services import baseline_run_create, baseline_run_queue, shard_folder
from leaderboard.baselines.work import baseline_run_here, baseline_shard_run, weights_fingerprint
from leaderboard.errors import ApplicationError, NotAllowed
from leaderboard.submissions import grading
from leaderboard.submissions.models import Submission
from leaderboard.submissions.selectors import leaderboard_rows
from leaderboard.submissions.services import submission_cancel, submission_rescore
from scoring.runners import load_jobs, shard

from .apiclient import client_for
from .baselinekit import *  # noqa: F403  (its fixtures)

Status = BaselineRun.Status


def run_and_score(phase, organizer, runner: str, shards: int = 1, **fields) -> BaselineRun:
    """A run made the way a worker makes it (shards, then assembly), then its submission scored."""
    run = baseline_run_here(run_id=baseline_run_create(phase=phase, user=organizer, runner=runner, shards=shards,
                                                       **fields).pk)
    assert run.submission is not None, run.error
    with TestCase.captureOnCommitCallbacks(execute=True):  # the end of scoring is announced on commit
        grading.submission_score(submission_id=run.submission.pk, attempt=run.submission.attempt)
    run.refresh_from_db()
    return run


def stored_zip(run: BaselineRun) -> bytes:
    with run.submission.file.open("rb") as handle:
        return handle.read()


def test_it_submits_a_cpu_baseline_that_is_scored_and_shown_as_a_runners_row(framed_phase, organizer):
    run = run_and_score(framed_phase, organizer, "colour")
    submission = run.submission
    assert (run.status, submission.status, submission.is_baseline, submission.team, submission.user) == (
        Status.FINISHED, Submission.Status.FINISHED, True, None, organizer)
    assert submission.method_name == "colour (reference runner)"
    assert f"baseline run #{run.pk}" in submission.method_description and run.finished_at is not None
    row = next(r for r in leaderboard_rows(phase=framed_phase, split="overall").rows
               if r.submission_id == submission.pk)
    assert row.rank is None and row.baseline == {"kind": "runner", "runner": "colour", "version": "1.0.0",
                                                 "run": run.pk}
    body = client_for().get(f"/api/v1/phases/{framed_phase.pk}/leaderboard/").json()
    assert [r["baseline"] for r in body["rows"]] == [{"kind": "runner", "runner": "colour", "version": "1.0.0",
                                                      "run": run.pk}]
    csv = client_for().get(f"/api/v1/phases/{framed_phase.pk}/leaderboard.csv").content.decode()
    header, first = (line.split(",") for line in csv.splitlines()[:2])
    assert first[header.index("baseline")] == "runner:colour:1.0.0"


def test_it_assembles_three_shards_into_the_zip_one_shard_makes(framed_phase, organizer,
                                                                django_capture_on_commit_callbacks):
    one = run_and_score(framed_phase, organizer, "colour", shards=1)
    with django_capture_on_commit_callbacks(execute=True):
        three = run_and_score(framed_phase, organizer, "colour", shards=3)
    assert not shard_folder(three, 0).parent.exists()  # the work folder goes once the zip is a submission
    assert stored_zip(three) == stored_zip(one)
    assert three.submission.file_sha256 == hashlib.sha256(stored_zip(one)).hexdigest()
    names = zipfile.ZipFile(io.BytesIO(stored_zip(three))).namelist()
    jobs = load_jobs(_meta(three))
    assert sorted(names) == sorted(job.relative_path for job in jobs)  # every expression, once
    # The three shards split the videos between them and each wrote only its own.
    done = {s.index: s.expressions_total for s in three.shard_runs.all()}
    assert sum(done.values()) == len(jobs) and all(done[i] == len(shard(jobs, i, 3)) > 0 for i in range(3))


def _meta(run: BaselineRun):  # type: ignore[no-untyped-def]
    from leaderboard.baselines.work import meta_file

    return meta_file(run)


def test_it_writes_each_shards_progress(framed_phase, organizer):
    run = run_and_score(framed_phase, organizer, "colour", shards=2)
    for row in run.shard_runs.all():
        assert row.status == ShardRun.Status.FINISHED and row.hostname == "here" and row.claims == 1
        assert row.expressions_done == row.expressions_total > 0 and row.frames_done == row.frames_total > 0
        assert row.frames_per_second > 0 and row.seconds >= row.model_seconds > 0 and row.lease_until is None


def test_it_replaces_the_previous_run_only_once_the_new_one_is_scored(framed_phase, organizer):
    old = run_and_score(framed_phase, organizer, "empty")
    new = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="empty").pk)
    assert new.status == Status.SUBMITTED  # submitted, not yet scored: the old row stays
    ids = [r.submission_id for r in leaderboard_rows(phase=framed_phase, split="overall").rows]
    assert ids == [old.submission_id]
    with TestCase.captureOnCommitCallbacks(execute=True):
        grading.submission_score(submission_id=new.submission.pk, attempt=new.submission.attempt)
    ids = [r.submission_id for r in leaderboard_rows(phase=framed_phase, split="overall").rows]
    assert ids == [new.submission_id]
    new.refresh_from_db()
    assert new.status == Status.FINISHED
    # Another runner's baseline is not replaced by it.
    colour = run_and_score(framed_phase, organizer, "colour")
    ids = {r.submission_id for r in leaderboard_rows(phase=framed_phase, split="overall").rows}
    assert ids == {new.submission_id, colour.submission_id}


def test_it_resumes_a_shard_whose_folder_holds_some_expressions(framed_phase, organizer, monkeypatch):
    run = baseline_run_create(phase=framed_phase, user=organizer, runner="colour")
    assert baseline_shard_run(run_id=run.pk, index=0) == "finished"
    folder = shard_folder(run, 0)
    written = sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))
    kept, removed = written[: len(written) // 2], written[len(written) // 2:]
    before = {p: p.read_bytes() for p in written}
    for path in removed:
        path.unlink()
    # As if the worker had died there: the shard is running under a lease that ran out.
    ShardRun.objects.filter(run=run).update(status=ShardRun.Status.RUNNING,
                                            lease_until=timezone.now() - dt.timedelta(seconds=1))
    from scoring.runners import classical

    predicted = []
    original = classical.ColourModel.predict
    monkeypatch.setattr(classical.ColourModel, "predict",
                        lambda self, job, frames: predicted.append(job.relative_path) or original(self, job, frames))
    assert baseline_shard_run(run_id=run.pk, index=0, hostname="w2") == "finished"
    assert sorted(predicted) == sorted(p.relative_to(folder).as_posix() for p in removed)  # only the rest
    row = ShardRun.objects.get(run=run)
    assert (row.expressions_skipped, row.claims, row.hostname) == (len(kept), 2, "w2")
    assert {p: p.read_bytes() for p in written} == before


def test_it_leaves_a_shard_with_a_live_lease_to_its_worker(framed_phase, organizer):
    run = baseline_run_create(phase=framed_phase, user=organizer, runner="empty")
    lease_until = timezone.now() + dt.timedelta(minutes=5)
    ShardRun.objects.filter(run=run).update(status=ShardRun.Status.RUNNING, lease="someone", lease_until=lease_until)
    assert baseline_shard_run(run_id=run.pk, index=0) == "busy"
    assert ShardRun.objects.get(run=run).lease == "someone"
    ShardRun.objects.filter(run=run).update(status=ShardRun.Status.FINISHED)
    assert baseline_shard_run(run_id=run.pk, index=0) == "done"  # a duplicate of a finished shard: nothing


def test_it_fails_the_run_with_the_runners_sentence_when_frames_are_missing(framed_phase, organizer, frames_dir):
    clip = sorted((frames_dir / "JPEGImages").iterdir())[0]
    next(clip.glob("*.jpg")).unlink()
    run = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="colour",
                                                       shards=2).pk)
    assert run.status == Status.FAILED and run.submission is None
    assert "lacks 1 of the" in run.error and "frames the meta file lists" in run.error
    failed = run.shard_runs.get(status=ShardRun.Status.FAILED)
    assert failed.error == run.error and run.error.startswith(f"Shard {failed.index} of 2")
    assert not Submission.objects.filter(phase=framed_phase).exists()


def test_it_fails_a_weighted_runner_whose_weights_are_missing_on_the_worker(framed_phase, organizer):
    run = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="grounded-sam2",
                                                       device="cpu").pk)
    assert run.status == Status.FAILED and "weights folder" in run.error and "does not exist" in run.error
    assert run.weights_path.endswith("weights/grounded-sam2")


def test_it_fingerprints_the_weights_by_their_config_files(tmp_path):
    (tmp_path / "gdino").mkdir()
    (tmp_path / "gdino" / "config.json").write_text('{"d_model": 256}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    first = weights_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 16)  # the tensors are not read
    assert weights_fingerprint(tmp_path) == first
    (tmp_path / "gdino" / "config.json").write_text('{"d_model": 128}')
    assert weights_fingerprint(tmp_path) != first


def test_it_lets_only_organizers_queue_a_baseline(framed_phase, alice):
    with pytest.raises(NotAllowed, match="Only the challenge's organizers"):
        baseline_run_queue(phase=framed_phase, user=alice, runner="empty")
    assert not BaselineRun.objects.exists()


def test_it_refuses_what_cannot_run(framed_phase, phase, organizer):
    with pytest.raises(ApplicationError, match="no runner named 'nope'"):
        baseline_run_create(phase=framed_phase, user=organizer, runner="nope")
    with pytest.raises(ApplicationError, match="has no option 'speed'"):
        baseline_run_create(phase=framed_phase, user=organizer, runner="colour", options={"speed": "1"})
    with pytest.raises(ApplicationError, match="runs on cpu, not 'cuda'"):
        baseline_run_create(phase=framed_phase, user=organizer, runner="colour", device="cuda")
    with pytest.raises(ApplicationError, match="uses no weights"):
        baseline_run_create(phase=framed_phase, user=organizer, runner="empty", weights="/w")
    phase.ground_truth = None
    phase.save()
    with pytest.raises(ApplicationError, match="no checked ground truth"):
        baseline_run_create(phase=phase, user=organizer, runner="empty")


def test_it_sends_a_chord_of_one_task_per_shard_on_the_runners_queue(framed_phase, organizer, settings,
                                                                     django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "_send", lambda run_id, shards, device: sent.append((run_id, shards, device)))
    with django_capture_on_commit_callbacks(execute=True):
        cpu = baseline_run_queue(phase=framed_phase, user=organizer, runner="colour", shards=3)
        gpu = baseline_run_queue(phase=framed_phase, user=organizer, runner="grounded-sam2", shards=2)
    assert sent == [(cpu.pk, 3, "cpu"), (gpu.pk, 2, "cuda")]
    assert (cpu.status, cpu.shard_runs.count(), gpu.shard_runs.count()) == (Status.QUEUED, 3, 2)
    chord = dispatch.run_chord(run_id=gpu.pk, shards=2, device="cuda")
    assert [(t.task, t.args) for t in chord.tasks] == [(dispatch.RUN_GPU_SHARD, (gpu.pk, 0)),
                                                       (dispatch.RUN_GPU_SHARD, (gpu.pk, 1))]
    assert (chord.body.task, chord.body.args) == (dispatch.ASSEMBLE_RUN, (gpu.pk,))
    routes = settings.CELERY_TASK_ROUTES
    assert routes[dispatch.shard_task_for("cuda")]["queue"] == "gpu"
    assert routes[dispatch.shard_task_for("cpu")]["queue"] == routes[dispatch.ASSEMBLE_RUN]["queue"] == "scoring"


def test_it_queues_a_run_from_the_command(framed_phase, organizer, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(dispatch, "_send", lambda *args: sent.append(args))
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_baseline", "colour", "--phase", "framed", "--shards", "2", "--option", "min_area=0.001",
                     "--user", "organizer", stdout=out)
    run = BaselineRun.objects.get()
    assert (run.runner, run.shards, run.options, run.device, run.user) == ("colour", 2, {"min_area": "0.001"}, "cpu",
                                                                          organizer)
    assert sent == [(run.pk, 2, "cpu")] and "2 shard(s) on the scoring queue" in out.getvalue()
    with pytest.raises(CommandError, match="has no option"):
        call_command("run_baseline", "colour", "--phase", "framed", "--option", "speed=2", "--user", "organizer")
    with pytest.raises(CommandError, match="no phase 'nope'"):
        call_command("run_baseline", "colour", "--phase", "nope", "--user", "organizer")


def test_it_runs_a_baseline_here_from_the_command(framed_phase, organizer):
    out = io.StringIO()
    call_command("run_baseline", "empty", "--phase", "framed", "--here", "--user", "organizer", stdout=out)
    run = BaselineRun.objects.get()
    assert run.status == Status.SUBMITTED and f"submission #{run.submission_id}" in out.getvalue()


def test_it_shows_the_run_page_to_whoever_sees_the_submission(framed_phase, organizer, client):
    run = run_and_score(framed_phase, organizer, "colour", shards=2)
    html = client.get(f"/baselines/runs/{run.pk}/").content.decode()
    assert "colour 1.0.0" in html and "2 of 2 finished" in html
    assert client.get("/baselines/runs/999999/").status_code == 404
    html = client.get("/challenges/egomask/phases/framed/leaderboard/overall/").content.decode()
    assert f'href="/baselines/runs/{run.pk}/"' in html and "runner colour 1.0.0" in html
    # A private board's run is the organizers' until the reveal, like its submission.
    Phase.objects.filter(pk=framed_phase.pk).update(visibility=Phase.Visibility.PRIVATE, reveal_at=None)
    assert client.get(f"/baselines/runs/{run.pk}/").status_code == 404
    client.force_login(organizer)
    assert client.get(f"/baselines/runs/{run.pk}/").status_code == 200


class FakeTask:
    """What the shard task's body reads of a bound Celery task: its retries so far, and retry()."""

    class Retry(Exception):
        pass

    def __init__(self, retries: int) -> None:
        self.request = type("Request", (), {"retries": retries, "hostname": "celery@test"})()

    def retry(self, **options):  # type: ignore[no-untyped-def]
        return self.Retry(options)


def test_it_retries_a_busy_shard_then_leaves_it_to_its_owner(framed_phase, organizer):
    from leaderboard.baselines import tasks

    run = baseline_run_create(phase=framed_phase, user=organizer, runner="empty")
    ShardRun.objects.filter(run=run).update(status=ShardRun.Status.RUNNING, lease="owner",
                                            lease_until=timezone.now() + dt.timedelta(minutes=5))
    with pytest.raises(FakeTask.Retry):
        tasks._run_shard(FakeTask(retries=0), run.pk, 0)
    # Retries spent: end normally, so the chord still fires and the assembly waits for the owner.
    assert tasks._run_shard(FakeTask(retries=tasks.BUSY_RETRIES), run.pk, 0) == "busy"
    assert ShardRun.objects.get(run=run).lease == "owner"


def test_it_fails_the_shard_and_the_run_after_the_last_retry_of_an_internal_error(framed_phase, organizer,
                                                                                   monkeypatch):
    from leaderboard.baselines import tasks, work

    run = baseline_run_create(phase=framed_phase, user=organizer, runner="empty")
    monkeypatch.setattr(work, "load_jobs", lambda path: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(FakeTask.Retry):
        tasks._run_shard(FakeTask(retries=0), run.pk, 0)
    shard_row = ShardRun.objects.get(run=run)
    assert (shard_row.status, shard_row.lease_until) == (ShardRun.Status.RUNNING, None)  # free for the retry
    assert tasks._run_shard(FakeTask(retries=tasks.MAX_RETRIES), run.pk, 0) == "failed"
    run.refresh_from_db()
    assert run.status == Status.FAILED and "internal error (OSError: disk gone)" in run.error
    assert ShardRun.objects.get(run=run).status == ShardRun.Status.FAILED


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_it_fails_the_run_when_its_submission_fails_or_is_cancelled(framed_phase, organizer, ending):
    run = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="empty").pk)
    assert run.status == Status.SUBMITTED
    with TestCase.captureOnCommitCallbacks(execute=True):
        if ending == "failed":
            grading.submission_fail_internal(submission_id=run.submission.pk, attempt=run.submission.attempt,
                                             reason="The scorer stopped.")
        else:
            submission_cancel(submission=run.submission, user=organizer)
    run.refresh_from_db()
    assert run.status == Status.FAILED and run.finished_at is not None
    assert run.error.startswith("Its submission was not scored: ")
    assert ("The scorer stopped." if ending == "failed" else "it was cancelled") in run.error


def test_it_follows_a_rescore_after_the_first_scoring_failed(framed_phase, organizer):
    run = baseline_run_here(run_id=baseline_run_create(phase=framed_phase, user=organizer, runner="empty").pk)
    with TestCase.captureOnCommitCallbacks(execute=True):
        grading.submission_fail_internal(submission_id=run.submission.pk, attempt=run.submission.attempt,
                                         reason="The scorer stopped.")
    run.refresh_from_db()
    assert run.status == Status.FAILED
    submission = submission_rescore(submission=run.submission, by=organizer, reason="a test")
    with TestCase.captureOnCommitCallbacks(execute=True):
        grading.submission_score(submission_id=submission.pk, attempt=submission.attempt)
    run.refresh_from_db()
    assert (run.status, run.error) == (Status.FINISHED, "")


def test_two_assemblies_of_one_run_submit_once_and_whole(framed_phase, organizer, monkeypatch):
    from leaderboard.baselines import services

    run = baseline_run_create(phase=framed_phase, user=organizer, runner="colour", shards=2)
    for index in range(2):
        assert baseline_shard_run(run_id=run.pk, index=index, hostname="celery@test") == "finished"
    real_merge = services.merge
    outcomes = []

    def merge_while_another_assembles(parts, out):  # the chord sent again: a second assembly meanwhile
        target = real_merge(parts, out)
        if not outcomes:
            outcomes.append("started")
            outcomes.append(services.baseline_run_assemble(run_id=run.pk))
        return target

    monkeypatch.setattr(services, "merge", merge_while_another_assembles)
    assert services.baseline_run_assemble(run_id=run.pk) == "done"
    assert outcomes == ["started", "submitted"]
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED
    assert Submission.objects.filter(phase=framed_phase, is_baseline=True).count() == 1
    names = zipfile.ZipFile(io.BytesIO(stored_zip(run))).namelist()
    assert sorted(names) == sorted(job.relative_path for job in load_jobs(_meta(run)))


def test_the_run_page_keeps_worker_paths_and_errors_for_organizers(framed_phase, organizer, client, settings):
    (settings.BASELINE_WEIGHTS_DIR / "colourful").mkdir(parents=True)
    run = run_and_score(framed_phase, organizer, "colour")
    BaselineRun.objects.filter(pk=run.pk).update(weights_path="/srv/secret/mount/colourful", weights_sha256="ab" * 32,
                                                 error="OSError on gpu-node-7: /srv/secret/mount")
    html = client.get(f"/baselines/runs/{run.pk}/").content.decode()
    assert "colourful" in html and "/srv/secret" not in html and "gpu-node-7" not in html
    client.force_login(organizer)
    html = client.get(f"/baselines/runs/{run.pk}/").content.decode()
    assert "/srv/secret/mount/colourful" in html and "gpu-node-7" in html
