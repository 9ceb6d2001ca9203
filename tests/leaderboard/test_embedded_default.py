"""With no environment at all: SQLite, storage under the var folder, and a real Celery worker on
kombu's filesystem transport — the set-up `make demo` runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = ("DATABASE_URL", "CELERY_BROKER_URL", "S3_BUCKET", "PRIVATE_STORAGE_DIR", "GROUND_TRUTH_CACHE_DIR",
                "SECRET_KEY", "CACHE_URL", "SITE_URL")

SUBMIT = """
import io, sys
from django.contrib.auth import get_user_model
from leaderboard.challenges.models import Phase
from leaderboard.submissions.services import submission_create
phase = Phase.objects.get(challenge__slug="egomask", slug="dev")
user = get_user_model().objects.get(username="participant")
with open(sys.argv[1], "rb") as handle:
    submission = submission_create(phase=phase, user=user, file=io.BytesIO(handle.read()), method_name="embedded")
print(submission.pk)
"""

STATUS = """
import sys
from leaderboard.submissions.models import Submission
s = Submission.objects.get(pk=int(sys.argv[1]))
print(s.status, s.scores.filter(split="overall").values_list("IoU_gold_pred", flat=True).first())
"""


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_it_scores_with_sqlite_and_the_filesystem_transport(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(DJANGO_SETTINGS_MODULE="leaderboard.settings", EGOMASK_VAR_DIR=str(tmp_path / "var"))
    manage(env, "migrate", "--noinput")
    logins = manage(env, "seed_demo", "--scale", "tiny").splitlines()
    # The logins come last, the participant's first (the others: the organizer, the host).
    assert logins[-3].startswith("username: participant  password: ")
    assert (tmp_path / "var" / "db.sqlite3").exists()

    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "leaderboard", "worker", "-Q", "scoring",
                               "-c", "1", "-P", "solo", "--without-heartbeat", "--without-mingle", "--without-gossip"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        example = tmp_path / "var" / "demo" / "example-good.zip"
        submission_id = manage(env, "shell", "-c", SUBMIT.replace("sys.argv[1]", repr(str(example)))).split()[-1]
        deadline = time.monotonic() + 90
        while True:
            status, value = manage(env, "shell", "-c", STATUS.replace("sys.argv[1]", submission_id)).split()[-2:]
            if status == "finished" or time.monotonic() > deadline:
                break
            time.sleep(1)
        # The worker's heartbeat reaches SQLite from its own thread, whatever the filesystem transport does.
        beat = manage(env, "shell", "-c", "from leaderboard.ops.models import WorkerHeartbeat as W; "
                      "print(*W.objects.values_list('pid', 'queues').get())").splitlines()[-1].split(maxsplit=1)
        assert beat == [str(worker.pid), "['scoring']"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert status == "finished"
    assert 0 < float(value) <= 100
    assert list((tmp_path / "var" / "private").rglob("*.zip")), "the upload is in private storage under var/"
