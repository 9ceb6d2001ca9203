"""Time the worker's scoring service end to end: stored upload -> scores and per-expression file written.

    python benchmarks/bench_service.py GT_FOLDER PRED.zip [PRED.zip ...] [--repeat 3]

Runs on the embedded defaults (SQLite and storage in a temporary folder, no services needed): a
challenge and phase with the ground truth stored as a zip and checked (so it is parsed and cached,
as on a worker that has scored this phase before), then each zip stored as a submission and
`grading.submission_score` timed: fetching the file from storage with its hash check, the one
scoring pass, and writing the scores and the per-expression CSV. Prints one JSON line per zip:
{"zip": ..., "seconds": [...], "best": ...}.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_scoring import zip_folder  # the same folder: run as a script, benchmarks/ is on the path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gt")
    parser.add_argument("predictions", nargs="+")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    var = tempfile.mkdtemp(prefix="egomask-bench-service-")
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "S3_BUCKET", "CACHE_URL"):
        os.environ.pop(name, None)
    os.environ.update({"EGOMASK_VAR_DIR": var, "DJANGO_SETTINGS_MODULE": "leaderboard.settings",
                       "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    from leaderboard.challenges.models import Challenge
    from leaderboard.challenges.services import ground_truth_check, ground_truth_create, phase_create
    from leaderboard.submissions import grading
    from leaderboard.submissions.models import Submission

    call_command("migrate", verbosity=0)
    challenge = Challenge.objects.create(slug="bench", title="Benchmark")
    archive = zip_folder(Path(args.gt), Path(var) / "gt.zip")
    bundle = ground_truth_create(challenge=challenge, name="bench", file=io.BytesIO(archive.read_bytes()),
                                 filename="gt.zip")
    bundle = ground_truth_check(bundle_id=bundle.pk)  # parses and caches, as a worker's first submission would
    phase = phase_create(challenge=challenge, slug="test", name="Test", ground_truth=bundle)
    for path in map(Path, args.predictions):
        data = path.read_bytes()
        seconds = []
        for _ in range(max(1, args.repeat)):
            submission = Submission(phase=phase, file_sha256=hashlib.sha256(data).hexdigest(), file_size=len(data),
                                    method_name=path.stem, is_baseline=True)
            submission.file.save("submission.zip", ContentFile(data), save=False)
            submission.save()
            start = time.perf_counter()
            done = grading.submission_score(submission_id=submission.pk, attempt=submission.attempt)
            seconds.append(time.perf_counter() - start)
            if done is None or done.status != Submission.Status.FINISHED:
                sys.exit(f"{path}: the service did not finish the submission ({done and done.failure_message})")
        print(json.dumps({"zip": str(path), "seconds": [round(s, 3) for s in seconds], "best": min(seconds)}),
              flush=True)


if __name__ == "__main__":
    main()
