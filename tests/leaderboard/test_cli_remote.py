"""`egomask` against a live server: login, challenges, phases, submit, status, leaderboard.

The CLI runs as a real subprocess with EGOMASK_SERVER / EGOMASK_TOKEN (or a saved login) and a
temporary HOME, against pytest-django's live server; the API contract it relies on is tested
through it. Scoring with --wait uses a real Celery worker on Redis; large uploads go through this
server (parts under VAR_DIR) or straight to a real S3 server (SeaweedFS).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from leaderboard.challenges.models import Phase
from leaderboard.submissions import boards
from leaderboard.submissions.models import Score, Submission, Upload
from scoring import METRICS
from scoring.cli.config import Config, save_config

from .conftest import PASSWORD
from .processes import ROOT, celery_worker, redis_broker

BROKER_URL = "redis://127.0.0.1:6379/11"  # used by this module only
MiB = 2**20
FIRST_LINE = re.compile(r"^Submission (\d+) ")
METHOD = "Oracle [b]v2[/b] :fire:"


def egomask(*args: object, env: dict[str, str], stdin: str = "", timeout: float = 120,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, input=stdin, cwd=ROOT, timeout=timeout)


def submission_id(done: subprocess.CompletedProcess[str]) -> int:
    """The id on stdout's first line, which must name the submission."""
    first = done.stdout.splitlines()[0] if done.stdout else ""
    match = FIRST_LINE.match(first)
    assert match, (done.stdout, done.stderr)
    return int(match.group(1))


def token_of(user) -> str:  # type: ignore[no-untyped-def]
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def cli_env(live_server, tmp_path) -> dict[str, str]:
    """A clean environment: its own HOME and config folder, the live server, no token."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("EGOMASK_") and k != "XDG_CONFIG_HOME"}
    return {**keep, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "EGOMASK_SERVER": live_server.url}


@pytest.fixture
def as_alice(cli_env, alice) -> dict[str, str]:
    return {**cli_env, "EGOMASK_TOKEN": token_of(alice)}


@pytest.fixture
def zip_file(tmp_path, prediction_zip) -> Callable[..., Path]:
    """Factory: a prediction zip on disk, optionally padded with random bytes (an ignored file) to a size."""

    def make(quality: str = "good", *, pad_to: int = 0, name: str = "predictions.zip") -> Path:
        data = prediction_zip(quality)
        if pad_to:
            buffer = io.BytesIO(data)
            with zipfile.ZipFile(buffer, "a", zipfile.ZIP_STORED) as archive:
                archive.writestr("padding.bin", os.urandom(max(0, pad_to - len(data))))
            data = buffer.getvalue()
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- login --------------------------------------------------------------------------------------


def test_it_logs_in_and_keeps_the_token_for_its_owner_only(cli_env, alice, tmp_path):
    env = {k: v for k, v in cli_env.items() if k != "EGOMASK_SERVER"}
    done = egomask("login", "--server", cli_env["EGOMASK_SERVER"], "--username", "alice", "--password-stdin",
                   env=env, stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "config" / "egomask" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved == {"server": cli_env["EGOMASK_SERVER"], "token": token_of(alice), "username": "alice"}
    assert done.stdout.startswith(f"Logged in to {cli_env['EGOMASK_SERVER']} as alice")

    # The saved login is used; then the environment overrides it.
    assert egomask("challenges", env=env).returncode == 0
    save_config(Config("http://127.0.0.1:9", saved["token"], "alice"), {"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]})
    assert egomask("challenges", env=cli_env).returncode == 0  # EGOMASK_SERVER wins over the dead saved one
    done = egomask("status", "1", env={**cli_env, "EGOMASK_TOKEN": "not-a-token"})
    assert done.returncode == 1
    assert done.stderr.startswith("egomask: error: ") and "egomask login" in done.stderr

    done = egomask("login", "--username", "alice", "--password-stdin", env=cli_env, stdin="wrong\n")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("egomask: error: ")


# --- challenges and phases ----------------------------------------------------------------------


def test_it_lists_challenges_and_phases_as_tables_and_json(as_alice, phase):
    done = egomask("challenges", env=as_alice)
    assert done.returncode == 0, done.stderr
    assert "egomask" in done.stdout and "EgoMask" in done.stdout and f"{phase.pk} test" in done.stdout

    done = egomask("challenges", "--json", env=as_alice)
    challenges = json.loads(done.stdout)
    (challenge,) = challenges
    assert {"id", "slug", "title", "description", "phases"} <= set(challenge)
    (listed,) = challenge["phases"]
    assert {"id", "slug", "name", "starts_at", "ends_at", "accepts_submissions", "is_open", "visibility",
            "reveal_at", "ranking_rule", "primary_metric", "splits", "quota"} <= set(listed)
    assert (listed["id"], listed["slug"], listed["is_open"]) == (phase.pk, "test", True)
    assert {s["code"] for s in listed["splits"]} >= {"short", "medium", "long"}

    done = egomask("phases", "egomask", env=as_alice)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"{phase.pk}\s+test\s+Test phase\s+open", done.stdout), done.stdout
    done = egomask("phases", "egomask", "--json", env=as_alice)
    assert [p["id"] for p in json.loads(done.stdout)] == [phase.pk]

    done = egomask("phases", "nope", env=as_alice)
    assert done.returncode == 1 and "no challenge 'nope'" in done.stderr


# --- submit -------------------------------------------------------------------------------------


def test_it_submits_a_small_zip_in_one_request(as_alice, alice, phase, zip_file):
    path = zip_file()
    done = egomask("submit", path, "--phase", "egomask/test", "--method-name", "Net v1", "--method-url",
                   "https://example.org/paper", "--private", env=as_alice)
    assert done.returncode == 0, done.stderr
    submission = Submission.objects.get(pk=submission_id(done))
    assert (submission.phase, submission.team.name, submission.user, submission.method_name) == \
        (phase, "Team A", alice, "Net v1")
    assert submission.method_url == "https://example.org/paper" and not submission.is_public
    assert submission.file_sha256 == sha256(path)
    assert not Upload.objects.exists()
    assert f"egomask status {submission.pk} --wait" in done.stderr


def test_it_submits_a_large_zip_in_parts_through_the_server(as_alice, phase, zip_file):
    path = zip_file(pad_to=11 * MiB)
    done = egomask("submit", path, "--phase", phase.pk, "--chunk-size", "5", "--json", env=as_alice)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)  # --json: exactly one object on stdout
    submission = Submission.objects.get(pk=body["id"])
    upload = Upload.objects.get()
    assert (upload.status, upload.submission, upload.parts, upload.size) == \
        (Upload.Status.COMPLETED, submission, 3, path.stat().st_size)
    assert submission.file_sha256 == sha256(path) and submission.is_public
    assert submission.file.read() == path.read_bytes()
    assert not (Path(settings.VAR_DIR) / "uploads" / str(upload.pk)).exists()

    # --large: the upload protocol even for a small file.
    done = egomask("submit", zip_file(), "--phase", phase.pk, "--large", env=as_alice)
    assert done.returncode == 0, done.stderr
    assert Upload.objects.get(submission_id=submission_id(done)).parts == 1


def test_it_submits_a_large_zip_straight_to_s3(cli_env, alice, s3_server, bucket, phase_on_s3, zip_file):
    path = zip_file(pad_to=6 * MiB)
    done = egomask("submit", path, "--phase", phase_on_s3.pk, "--chunk-size", "5",
                   env={**cli_env, "EGOMASK_TOKEN": token_of(alice)})
    assert done.returncode == 0, done.stderr
    submission = Submission.objects.get(pk=submission_id(done))
    upload = Upload.objects.get(submission=submission)
    assert upload.parts == 2 and upload.multipart_id
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    (key,) = [k for k in keys if k.endswith(upload.key)]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == path.read_bytes()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_it_refuses_here_a_zip_the_server_would_refuse(as_alice, phase, tmp_path, zip_file):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("short/video_1/0/0-1.json", "{not json")
    done = egomask("submit", bad, "--phase", phase.pk, env=as_alice)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "error: " in done.stderr and "was not uploaded: the server would refuse it (1 problem" in done.stderr
    # Nothing was sent: nothing exists on the server, and a dead server makes no difference.
    assert not Submission.objects.exists() and not Upload.objects.exists()
    done = egomask("submit", bad, "--phase", phase.pk, "--large", env={**as_alice, "EGOMASK_SERVER": "http://127.0.0.1:9"})
    assert done.returncode == 1 and "was not uploaded" in done.stderr

    notzip = tmp_path / "notes.zip"
    notzip.write_text("hello")
    done = egomask("submit", notzip, "--phase", phase.pk, env=as_alice)
    assert done.returncode == 1 and "was not uploaded" in done.stderr
    assert not Submission.objects.exists() and not Upload.objects.exists()


def assert_refused_before_uploading(env: dict[str, str], path: Path, phase_id: int, sentence: str) -> None:
    """`submit`, small and --large, stops with exit 1 and one sentence, and nothing reached the server."""
    for extra in ((), ("--large",)):
        done = egomask("submit", path, "--phase", phase_id, *extra, env=env)
        assert done.returncode == 1, done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith(f"egomask: error: {sentence}") and len(done.stderr.splitlines()) == 1, \
            done.stderr
    assert not Submission.objects.exists() and not Upload.objects.exists()


def test_it_sends_nothing_without_a_team_and_says_where_to_make_one(cli_env, eve, phase, zip_file):
    assert_refused_before_uploading(
        {**cli_env, "EGOMASK_TOKEN": token_of(eve)}, zip_file(), phase.pk,
        "You are not in a team for the challenge egomask, so nothing was uploaded; create or join a team on the "
        f"website: {cli_env['EGOMASK_SERVER']}/challenges/egomask/\n")


def test_it_sends_nothing_before_the_terms_are_accepted_and_says_where(as_alice, alice, phase, zip_file, settings,
                                                                      cli_env):
    settings.SITE_URL = cli_env["EGOMASK_SERVER"]  # the live server is the site the message links to
    phase.challenge.terms = "Use the data for research only."
    phase.challenge.save()
    Phase.objects.filter(pk=phase.pk).update(requires_terms=True)
    url = f"{cli_env['EGOMASK_SERVER']}/challenges/egomask/terms/"
    assert_refused_before_uploading(
        as_alice, zip_file(), phase.pk,
        f"The phase 'Test phase' takes submissions only from participants who accepted the terms of EgoMask. Read "
        f"and accept them at {url}\n")
    from leaderboard.challenges.terms import terms_accept, terms_sha256

    terms_accept(user=alice, challenge=phase.challenge, terms_sha256_seen=terms_sha256(challenge=phase.challenge))
    done = egomask("submit", zip_file(), "--phase", phase.pk, env=as_alice)
    assert done.returncode == 0, done.stderr


def test_it_sends_nothing_when_the_daily_quota_is_used_and_says_when_it_resets(as_alice, alice, phase, zip_file,
                                                                              submit):
    phase.max_per_day = 1
    phase.save()
    submit(alice)
    uploads, submissions = Upload.objects.count(), Submission.objects.count()
    tomorrow = (timezone.now().astimezone(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
    for extra in ((), ("--large",)):
        done = egomask("submit", zip_file(), "--phase", phase.pk, *extra, env=as_alice)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr == ("egomask: error: Your team has used its daily quota of submissions for phase "
                               f"egomask/test (1 a day); nothing was uploaded, and the quota resets at {tomorrow}.\n")
    assert (Upload.objects.count(), Submission.objects.count()) == (uploads, submissions)

    phase.max_per_day, phase.max_total = None, 1
    phase.save()
    for extra in ((), ("--large",)):
        done = egomask("submit", zip_file(), "--phase", phase.pk, *extra, env=as_alice)
        assert done.returncode == 1
        assert done.stderr == "egomask: error: Your team has used all its submissions for phase egomask/test " \
                              "(1 in all); nothing was uploaded.\n"
    assert (Upload.objects.count(), Submission.objects.count()) == (uploads, submissions)


def test_it_sends_nothing_to_a_closed_phase_and_says_when_it_opens_or_closed(as_alice, phase, zip_file):
    phase.starts_at = dt.datetime(2999, 1, 1, 12, 0, tzinfo=dt.UTC)
    phase.save()
    assert_refused_before_uploading(as_alice, zip_file(), phase.pk,
                                    "Phase egomask/test opens at 2999-01-01 12:00 UTC; nothing was uploaded "
                                    "(`egomask phases egomask` shows which phases are open).\n")
    phase.starts_at, phase.ends_at = None, dt.datetime(2001, 2, 3, 4, 5, tzinfo=dt.UTC)
    phase.save()
    assert_refused_before_uploading(as_alice, zip_file(), phase.pk,
                                    "Phase egomask/test closed at 2001-02-03 04:05 UTC; nothing was uploaded")
    phase.ends_at, phase.accepts_submissions = None, False
    phase.save()
    assert_refused_before_uploading(as_alice, zip_file(), phase.pk,
                                    "Phase egomask/test is not accepting submissions now; nothing was uploaded")


def test_it_names_a_command_for_a_phase_that_does_not_exist(as_alice, phase, zip_file):
    assert_refused_before_uploading(as_alice, zip_file(), 999_999,
                                    "there is no phase 999999 on this server; `egomask challenges` lists the "
                                    "phases\n")
    done = egomask("leaderboard", 999_999, env=as_alice)
    assert done.returncode == 1 and "`egomask challenges` lists the phases" in done.stderr


# --- Ctrl-C during an upload leaves nothing -------------------------------------------------------


def interrupt_after_first_part(env: dict[str, str], path: Path, phase_id: int,
                               first_part_arrived: Callable[[Upload], bool]) -> subprocess.CompletedProcess[str]:
    """Start a 3-part upload that pauses after part 1, send SIGINT once part 1 is on the server."""
    command = [sys.executable, "-m", "scoring.cli", "submit", str(path), "--phase", str(phase_id),
               "--chunk-size", "5"]
    # A test run started from a background job inherits SIGINT as ignored, and Python installs its Ctrl-C
    # handler only when SIGINT is not ignored: give the child the default disposition, as a terminal would.
    child = subprocess.Popen(command, env={**env, "EGOMASK_TEST_PART_DELAY": "60"}, cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while True:
            upload = Upload.objects.filter(status=Upload.Status.PENDING).first()
            if upload is not None and first_part_arrived(upload):
                break
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the first part never arrived"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


def test_it_aborts_an_interrupted_upload_through_the_server(as_alice, phase, zip_file):
    parts_dir = Path(settings.VAR_DIR) / "uploads"
    done = interrupt_after_first_part(as_alice, zip_file(pad_to=11 * MiB), phase.pk,
                                      lambda upload: (parts_dir / str(upload.pk) / "00001.part").exists())
    assert done.returncode == 130, done.stderr
    assert "nothing was left on the server" in done.stderr
    upload = Upload.objects.get()
    assert upload.status == Upload.Status.ABORTED
    assert not Submission.objects.exists()
    assert not (parts_dir / str(upload.pk)).exists()


def test_it_aborts_an_interrupted_upload_straight_to_s3(cli_env, alice, s3_server, bucket, phase_on_s3, zip_file):
    client = s3_server.client()

    def first_part_in_s3(upload: Upload) -> bool:
        if not upload.multipart_id:
            return False
        key = next(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
        return bool(client.list_parts(Bucket=bucket, Key=key, UploadId=upload.multipart_id).get("Parts"))

    done = interrupt_after_first_part({**cli_env, "EGOMASK_TOKEN": token_of(alice)}, zip_file(pad_to=11 * MiB),
                                      phase_on_s3.pk, first_part_in_s3)
    assert done.returncode == 130, done.stderr
    assert "nothing was left on the server" in done.stderr
    assert Upload.objects.get().status == Upload.Status.ABORTED
    assert not Submission.objects.exists()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])
            if "/uploads/" in o["Key"]] == []


# --- --wait, status, leaderboard ----------------------------------------------------------------


def test_it_waits_for_the_scores_then_shows_status_and_leaderboard(as_alice, phase, zip_file, tmp_path):
    with redis_broker(BROKER_URL), celery_worker(BROKER_URL, log=tmp_path / "worker.log"):
        done = egomask("submit", zip_file("perfect"), "--phase", phase.pk, "--method-name", METHOD, "--wait",
                       env=as_alice)
    assert done.returncode == 0, (done.stdout, done.stderr, (tmp_path / "worker.log").read_text()[-3000:])
    sid = submission_id(done)
    assert Submission.objects.get(pk=sid).status == Submission.Status.FINISHED
    assert re.search(r"^Submission \d+: finished$", done.stdout, re.MULTILINE)
    header = next(line for line in done.stdout.splitlines() if "T_recall" in line)
    assert header.split() == ["split", *METRICS]
    overall = next(line for line in done.stdout.splitlines() if line.strip().startswith("overall"))
    assert overall.split() == ["overall", "100.00", "100.00", "100.00", "100.00"]

    done = egomask("status", sid, env=as_alice)
    assert done.returncode == 0 and done.stdout.startswith(f"Submission {sid}: finished")
    body = json.loads(egomask("status", sid, "--json", env=as_alice).stdout)
    assert {"id", "phase", "team", "method_name", "status", "failure_message", "problems", "warnings", "attempt",
            "submitted_at", "finished_at", "scores"} <= set(body)
    assert (body["id"], body["status"], body["method_name"]) == (sid, "finished", METHOD)
    assert set(body["scores"]) == {"short", "medium", "long", "overall"}
    assert all(set(v) >= set(METRICS) for v in body["scores"].values())
    assert body["scores"]["overall"]["IoU_gold_pred"] == pytest.approx(100.0)

    board = json.loads(egomask("leaderboard", phase.pk, "--json", env=as_alice).stdout)
    assert {"phase", "split", "metric", "visible", "message", "rows"} <= set(board)
    assert (board["split"], board["visible"]) == ("overall", True)
    (row,) = board["rows"]
    assert {"rank", "team", "method", "is_baseline", "scores", "submitted_at", "submission_id"} <= set(row)
    assert (row["rank"], row["method"], row["submission_id"]) == (1, METHOD, sid)
    board = json.loads(egomask("leaderboard", "egomask/test", "--split", "short", "--json", env=as_alice).stdout)
    assert board["split"] == "short" and board["rows"][0]["submission_id"] == sid

    done = egomask("leaderboard", phase.pk, env={k: v for k, v in as_alice.items() if k != "EGOMASK_TOKEN"})
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "Oracle" in line)
    assert line.split()[:3] == ["1", "Team", "A"] and "100.00" in line
    assert METHOD in line  # printed as typed: not read as markup or an emoji code


def test_it_exits_1_for_a_failed_submission_and_says_why(as_alice, alice, bob, submit, cli_env):
    submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(
        status=Submission.Status.FAILED, failure_message="Your submission could not be scored: bad RLE.",
        problems=[{"code": "rle", "message": "bad RLE", "location": {"split": "short", "video": "v1"}}])
    done = egomask("status", submission.pk, env=as_alice)
    assert done.returncode == 1
    assert done.stdout.startswith(f"Submission {submission.pk}: failed")
    assert "Your submission could not be scored: bad RLE." in done.stdout
    assert "split short, video v1: bad RLE" in done.stdout
    body = json.loads(egomask("status", submission.pk, "--json", env=as_alice).stdout)
    assert (body["status"], body["problems"][0]["message"]) == ("failed", "bad RLE")

    teammate = egomask("status", submission.pk, env={**cli_env, "EGOMASK_TOKEN": token_of(bob)})
    assert teammate.returncode == 1 and teammate.stdout.startswith(f"Submission {submission.pk}: failed")


def test_it_hides_another_teams_submission(as_alice, carol, submit, cli_env):
    submission = submit(carol)
    done = egomask("status", submission.pk, env=as_alice)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("egomask: error: ")


def test_it_stops_waiting_after_the_timeout(as_alice, alice, submit):
    submission = submit(alice)  # no worker: it stays submitted
    done = egomask("status", submission.pk, "--wait", "--timeout", "1", env=as_alice)
    assert done.returncode == 4
    assert "still submitted after 1 s" in done.stderr
    done = egomask("status", submission.pk, "--wait", "--timeout", "0.5", "--json", env=as_alice)
    assert done.returncode == 4 and json.loads(done.stdout)["status"] == "submitted"


def test_status_and_leaderboard_show_the_ladders_score_while_the_phase_runs_it(as_alice, alice, phase, submit):
    Phase.objects.filter(pk=phase.pk).update(ladder=True, ladder_step=1.0,
                                             ends_at=timezone.now() + dt.timedelta(days=7))
    submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.FINISHED)
    for split in ("short", "medium", "long", "overall"):
        Score.objects.create(submission=submission, split=split, n_expressions=3, scorer_version="t", gt_version="t",
                             T_recall=71.2345, IoU_all=55.4321, IoU_gold=58.8765, IoU_gold_pred=60.4321)
    boards.board_refresh(phase_id=phase.pk)

    done = egomask("status", submission.pk, env=as_alice)
    assert done.returncode == 0, done.stderr
    overall = next(line for line in done.stdout.splitlines() if line.strip().startswith("overall"))
    assert overall.split() == ["overall", "—", "—", "—", "60.00"]
    assert "This phase uses the Ladder: exact scores are revealed when the phase ends on" in done.stdout
    done = egomask("leaderboard", phase.pk, env=as_alice)
    assert done.returncode == 0, done.stderr
    assert "60.00" in done.stdout and "This phase uses the Ladder" in done.stdout
    for exact in ("60.43", "71.23", "55.43", "58.88"):
        assert exact not in done.stdout
