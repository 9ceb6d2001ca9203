"""Set-up shared by the fault scripts (fault_kill_loop.py, fault_outages.py): a database of their own on the
machine's PostgreSQL, migrated, with a challenge, a phase on the tiny synthetic ground truth, and a team;
Django configured with the test settings so that the harness in tests/leaderboard/faults.py can start real
workers on it. Run the scripts from the project root."""

from __future__ import annotations

import io
import itertools
import os
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(database: str, admin_url: str = "postgres://postgres@127.0.0.1:5432/postgres") -> dict:
    """Create (afresh) and migrate `database`, configure Django on it, and seed what a run needs."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    base = admin_url.rsplit("/", 1)[0]
    var = tempfile.mkdtemp(prefix=f"{database}-")
    os.environ.update({"DATABASE_URL": f"{base}/{database}", "DJANGO_SETTINGS_MODULE": "leaderboard.settings_test",
                       "EGOMASK_VAR_DIR": var, "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from leaderboard.accounts.services import team_create
    from leaderboard.challenges.models import Challenge
    from leaderboard.challenges.services import ground_truth_check, ground_truth_create, phase_create
    from scoring.synth import synthesize, synthesize_predictions
    from tests.leaderboard.conftest import make_user, zip_tree

    call_command("migrate", verbosity=0)
    settings.GROUND_TRUTH_CACHE_DIR = Path(var) / "gt-cache"
    gt = synthesize(Path(var) / "gt", scale="tiny", seed=11)
    predictions = zip_tree(synthesize_predictions(gt, Path(var) / "pred", quality="good", seed=5))
    challenge = Challenge.objects.create(slug="faults", title="Faults")
    bundle = ground_truth_create(challenge=challenge, name="tiny", file=io.BytesIO(zip_tree(gt)), filename="gt.zip")
    phase = phase_create(challenge=challenge, slug="test", name="Test", ground_truth=ground_truth_check(
        bundle_id=bundle.pk))
    user = make_user("faulty")
    team_create(challenge=challenge, user=user, name="Team Faults")
    counter = itertools.count(1)

    def new_zip() -> bytes:
        """The same predictions, another file each call (a zip comment), as separate uploads would be."""
        comment = f"upload {next(counter)}".encode()
        return predictions[:-2] + struct.pack("<H", len(comment)) + comment

    assert zipfile.is_zipfile(io.BytesIO(new_zip()))
    return {"phase": phase, "user": user, "new_zip": new_zip, "var": Path(var)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
