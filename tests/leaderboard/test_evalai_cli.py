"""The real `evalai` CLI (PyPI evalai==1.3.18, unchanged) against a live test server.

The CLI runs as a subprocess with its own HOME (it keeps ~/.evalai/host_url and token.json). Only
its PyPI version check (evalai.utils.updates.get_latest_version, called by every command) is
replaced, because it needs the internet. Submissions are scored in this process with the scoring
service, except in the one test that runs a real Celery worker.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from leaderboard.challenges.models import Phase
from leaderboard.submissions.models import Submission, Upload

from .processes import celery_worker, redis_broker

BROKER_URL = "redis://127.0.0.1:6379/10"  # used by this module only
RUN_CLI = ("import evalai.utils.updates as u; u.get_latest_version = lambda: '1.3.18'; "
           "from evalai.main import main; main()")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Click 7+ spells the command set-token; the click 6.7 that evalai pins (see the README) spells it set_token.
SET_TOKEN = "set_token" if int(version("click").split(".")[0]) < 7 else "set-token"
DETAILS = "y\n{name}\nA description\nhttps://example.org/code\nhttps://example.org/paper\n"  # the CLI's prompts


class EvalAI:
    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, *args: str, stdin: str = "", ok: bool = True) -> str:
        """Run `evalai ARGS`; its output without colours. `ok`: expect exit status 0 (else 1)."""
        done = subprocess.run([sys.executable, "-c", RUN_CLI, *args], input=stdin, capture_output=True, text=True,
                              timeout=120, env={"HOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        output = ANSI.sub("", done.stdout + done.stderr)
        assert done.returncode == (0 if ok else 1), f"evalai {' '.join(args)} exited {done.returncode}:\n{output}"
        return output


@pytest.fixture
def broker():
    """Tasks that submissions enqueue go to a Redis database of this module's, flushed afterwards."""
    with redis_broker(BROKER_URL) as client:
        yield client


@pytest.fixture
def evalai(live_server, broker, tmp_path) -> EvalAI:
    assert importlib.util.find_spec("evalai"), "the evalai CLI is not installed: see the Makefile's install step"
    return EvalAI(tmp_path / "home")


def log_in(evalai: EvalAI, url: str, user) -> None:
    assert f"{url} is set as the host url" in evalai("host", "-sh", url)
    assert "successfully set" in evalai(SET_TOKEN, Token.objects.get_or_create(user=user)[0].key)


def test_it_browses_challenges_phases_and_boards(evalai, live_server, alice, carol, phase, challenge, submit, score):
    score(submit(alice, "perfect", method_name="Oracle"))
    score(submit(carol, "noisy", method_name="Noisy"))
    log_in(evalai, live_server.url, alice)
    assert f"{live_server.url} is the Host URL" in evalai("host")

    listing = evalai("challenges")
    assert "EgoMask" in listing and "Test challenge" in listing and "Organizers" in listing

    assert "Description" in evalai("challenge", str(challenge.pk))

    phases = evalai("challenge", str(challenge.pk), "phases")
    assert re.search(rf"\|\s*{phase.pk}\s*\|\s*Test phase\s*\|\s*{challenge.pk}\s*\|", phases), phases

    details = evalai("challenge", str(challenge.pk), "phase", str(phase.pk))
    assert f"Phase ID: {phase.pk}" in details and "Code Name : test" in details and "Active : True" in details
    as_json = json.loads(evalai("challenge", str(challenge.pk), "phase", "--json", str(phase.pk)))
    assert as_json["id"] == phase.pk and as_json["primary_metric"] == phase.primary_metric

    splits = evalai("challenge", str(challenge.pk), "phase", str(phase.pk), "splits")
    overall = phase.splits.get(code="overall")
    assert re.search(rf"\|\s*{overall.pk}\s*\|\s*overall\s*\|\s*Test phase\s*\|", splits), splits

    board = evalai("challenge", str(challenge.pk), "leaderboard", str(overall.pk))
    assert "T_recall" in board and "IoU_gold_pred" in board
    assert board.index("Team A") < board.index("Team C")

    assert "There is no challenge 999999" in evalai("challenge", "999999", ok=False)
    assert "There is no phase 999999" in evalai("challenge", str(challenge.pk), "phase", "999999", ok=False)


def test_it_submits_a_file_and_shows_its_result(evalai, live_server, alice, phase, challenge, prediction_zip, score,
                                                 tmp_path):
    log_in(evalai, live_server.url, alice)
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(prediction_zip("perfect"))
    output = evalai("challenge", str(challenge.pk), "phase", str(phase.pk), "submit", "--file", str(upload),
                    stdin=DETAILS.format(name="Oracle"))
    submission = Submission.objects.get()
    assert f"with the ID {submission.pk} is successfully submitted" in output
    assert (submission.method_name, submission.method_description, submission.code_url, submission.method_url) == (
        "Oracle", "A description", "https://example.org/code", "https://example.org/paper")

    assert "Submission Status : submitted" in evalai("submission", str(submission.pk))
    assert "yet to be evaluated" in evalai("submission", str(submission.pk), "result")
    score(submission)
    shown = evalai("submission", str(submission.pk))
    assert f"Submission ID: {submission.pk}" in shown and "Submission Status : finished" in shown
    assert "Team A" in shown
    result = json.loads(evalai("submission", str(submission.pk), "result"))
    assert result["status"] == "finished" and result["scores"]["overall"][phase.primary_metric] == 100.0

    mine = evalai("challenge", str(challenge.pk), "phase", str(phase.pk), "submissions")
    assert re.search(rf"\|\s*{submission.pk}\s*\|\s*Team A\s*\|", mine) and "Oracle" in mine


def test_it_prints_our_sentences_when_a_submission_is_refused(evalai, live_server, alice, eve, phase, challenge,
                                                               prediction_zip, submit, tmp_path):
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(prediction_zip("good"))
    command = ("challenge", str(challenge.pk), "phase", str(phase.pk), "submit", "--file", str(upload))
    log_in(evalai, live_server.url, eve)
    assert "Create or join a team for this challenge" in evalai(*command, stdin=DETAILS.format(name="x"), ok=False)
    log_in(evalai, live_server.url, alice)
    Phase.objects.filter(pk=phase.pk).update(max_per_day=1)
    submit(alice)
    assert "daily quota" in evalai(*command, stdin=DETAILS.format(name="x"), ok=False)
    assert "daily quota" in evalai(*command, "--large", stdin=DETAILS.format(name="x"), ok=False)
    assert Submission.objects.count() == 1 and not Upload.objects.exists()


def test_it_accepts_a_submission_without_details_under_the_files_name(evalai, live_server, alice, phase, challenge,
                                                                    prediction_zip, tmp_path):
    log_in(evalai, live_server.url, alice)
    upload = tmp_path / "my-predictions.zip"
    upload.write_bytes(prediction_zip("good"))
    command = ("challenge", str(challenge.pk), "phase", str(phase.pk), "submit", "--file", str(upload))
    output = evalai(*command, stdin="n\n")  # the CLI's default answer to "include the Submission Details?"
    submission = Submission.objects.get()
    assert f"with the ID {submission.pk} is successfully submitted" in output
    assert submission.method_name == "my-predictions"
    upload.write_bytes(prediction_zip("good"))  # another file: the same one again would be a retried upload
    handle = _handle(evalai(*command, "--large", stdin="n\n"))
    assert Upload.objects.get().pk == uuid.UUID(int=handle)
    assert Submission.objects.exclude(pk=submission.pk).get().method_name == "my-predictions"


def _handle(output: str) -> int:
    found = re.search(r"with the id (\d+) is successfully submitted", output)
    assert found, output
    return int(found.group(1))


def test_it_submits_a_large_file_through_the_server(evalai, live_server, alice, phase, challenge, prediction_zip,
                                                     score, tmp_path):
    log_in(evalai, live_server.url, alice)
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(prediction_zip("perfect"))
    output = evalai("challenge", str(challenge.pk), "phase", str(phase.pk), "submit", "--file", str(upload),
                    "--large", "--private", stdin=DETAILS.format(name="Large oracle"))
    handle = _handle(output)
    submission = Submission.objects.get()
    assert Upload.objects.get().pk == uuid.UUID(int=handle)
    assert (submission.method_name, submission.is_public, submission.file_size) == (
        "Large oracle", False, upload.stat().st_size)
    # The id the CLI printed is the upload's handle: `evalai submission` shows the submission it became.
    assert f"Submission ID: {submission.pk}" in evalai("submission", str(handle))
    score(submission)
    assert "Submission Status : finished" in evalai("submission", str(handle))


def test_it_reports_a_refused_large_file_with_our_sentence(evalai, live_server, alice, phase, challenge, tmp_path):
    log_in(evalai, live_server.url, alice)
    upload = tmp_path / "predictions.tar"
    upload.write_bytes(b"this is not a zip")
    output = evalai("challenge", str(challenge.pk), "phase", str(phase.pk), "submit", "--file", str(upload),
                    "--large", stdin=DETAILS.format(name="x"), ok=False)
    assert "There was an error while making the submission: This is not a zip file" in output
    assert not Submission.objects.exists() and Upload.objects.get().status == Upload.Status.ABORTED


def test_it_submits_a_large_file_straight_to_s3(evalai, live_server, alice, phase_on_s3, prediction_zip, score,
                                                 s3_private, tmp_path):
    log_in(evalai, live_server.url, alice)
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(prediction_zip("perfect"))
    output = evalai("challenge", str(phase_on_s3.challenge_id), "phase", str(phase_on_s3.pk), "submit", "--file",
                    str(upload), "--large", stdin=DETAILS.format(name="On S3"))
    handle = _handle(output)
    submission = Submission.objects.get()
    assert s3_private.exists(submission.file.name) and submission.file.read() == upload.read_bytes()
    assert score(submission).status == Submission.Status.FINISHED
    assert "Submission Status : finished" in evalai("submission", str(handle))


def test_it_is_scored_by_a_real_worker(evalai, live_server, alice, phase, challenge, prediction_zip, tmp_path):
    log_in(evalai, live_server.url, alice)
    upload = tmp_path / "predictions.zip"
    upload.write_bytes(prediction_zip("good"))
    with celery_worker(BROKER_URL, tmp_path / "worker.log") as worker:
        output = evalai("challenge", str(challenge.pk), "phase", str(phase.pk), "submit", "--file", str(upload),
                        stdin=DETAILS.format(name="Worked"))
        submission_id = int(re.search(r"with the ID (\d+)", output).group(1))
        deadline = time.monotonic() + 60
        while "Submission Status : finished" not in (shown := evalai("submission", str(submission_id))):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, shown + (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
    overall = phase.splits.get(code="overall")
    assert "Team A" in evalai("challenge", str(challenge.pk), "leaderboard", str(overall.pk))
