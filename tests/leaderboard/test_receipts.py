"""Score receipts on the server (submissions/receipts.py): issued by every scoring, verified by the scoring
library with the key the well-known URL publishes, re-issued by a rescore, rotated keys, and who may download
one (the Ladder hides it from all but organizers while it runs)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import zipfile

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from leaderboard.env import ImproperlyConfiguredEnv, env_base64
from leaderboard.submissions import receipts as server_receipts
from leaderboard.submissions.models import Score, Submission
from leaderboard.submissions.services import submission_rescore
from scoring import receipts
from scoring.receipts import ReceiptError

from .apiclient import assert_error, client_for

WELL_KNOWN = "/.well-known/egomask-receipt-key.json"
SEED = base64.b64encode(bytes(range(32))).decode()


def url(submission: Submission) -> str:
    return f"/api/v1/submissions/{submission.pk}/receipt/"


def published() -> list:
    response = Client().get(WELL_KNOWN)
    assert response.status_code == 200
    return receipts.load_public_keys(response.content)


def download(user, submission: Submission) -> dict:  # type: ignore[no-untyped-def]
    response = client_for(user).get(url(submission))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="egomask-receipt-{submission.pk}.json"'
    return receipts.loads(response.content)


@pytest.fixture
def scored(alice, submit, score) -> Submission:
    submission = score(submit(alice, "noisy", method_name="Noisy tracker"))
    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    return submission


def test_it_issues_a_receipt_that_verifies_with_the_published_key(scored, alice, settings):
    receipt = download(alice, scored)
    assert receipt == scored.receipt
    done = receipts.verify(receipt, published())
    assert done.trusted and done.key_id == receipts.key_id(published()[0])
    p = done.payload
    assert (p["server"], p["challenge"], p["phase"]) == (settings.SITE_URL, "egomask", "test")
    assert (p["submission"], p["attempt"], p["team"], p["method"], p["baseline"]) == (
        scored.pk, 1, "Team A", "Noisy tracker", False)
    assert p["file"] == {"sha256": scored.file_sha256, "size": scored.file_size}
    with scored.file.open("rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == p["file"]["sha256"]
    assert (p["scorer_version"], p["gt_version"]) == (scored.scorer_version, scored.gt_version)
    rows = {s.split: s for s in Score.objects.filter(submission=scored)}
    assert set(p["scores"]) == {"short", "medium", "long", "overall"}
    assert p["scores"] == {split: row.metrics() for split, row in rows.items()}
    assert p["n_expressions"] == {split: row.n_expressions for split, row in rows.items()}
    assert p["ci"] == {split: row.ci for split, row in rows.items() if row.ci}
    assert p["scored_at"] == scored.finished_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    issued = dt.datetime.fromisoformat(p["issued_at"])
    assert scored.finished_at <= issued <= timezone.now()


def test_it_carries_the_intervals_of_the_score_rows(scored):
    Score.objects.filter(submission=scored, split="long").update(ci={"IoU_gold_pred": [10.5, 20.25]})
    receipt = server_receipts.receipt_issue(submission=Submission.objects.get(pk=scored.pk))
    stored = {score.split: score.ci for score in Score.objects.filter(submission=scored) if score.ci}
    assert receipt["payload"]["ci"] == stored and stored["long"] == {"IoU_gold_pred": [10.5, 20.25]}
    assert "short" in stored  # the worker's own intervals are carried too
    assert Submission.objects.get(pk=scored.pk).receipt == receipt
    assert receipts.verify(receipt, published()).payload["ci"]["long"]["IoU_gold_pred"] == [10.5, 20.25]


def test_a_rescore_issues_a_new_receipt(scored, organizer, alice, score):
    first = scored.receipt
    again = score(submission_rescore(submission=scored, by=organizer, reason="a test"))
    assert again.attempt == 2 and again.status == Submission.Status.FINISHED
    second = download(alice, again)
    assert second["payload"]["attempt"] == 2 and first["payload"]["attempt"] == 1
    assert second["signature"] != first["signature"]
    assert second["payload"]["scored_at"] != first["payload"]["scored_at"]
    assert receipts.verify(second, published()).trusted


def test_it_tells_a_tampered_download_from_a_genuine_one(scored, alice):
    receipt = download(alice, scored)
    receipt["payload"]["scores"]["overall"]["IoU_gold_pred"] += 1
    with pytest.raises(ReceiptError, match="signature does not match"):
        receipts.verify(receipt, published())


def test_it_signs_with_the_configured_key_and_keeps_publishing_the_previous_one(scored, alice, settings, score,
                                                                                organizer):
    derived = receipts.derive_private_key(settings.SECRET_KEY)
    assert scored.receipt["key_id"] == receipts.key_id(derived.public_key())  # no RECEIPT_SIGNING_KEY: derived
    settings.RECEIPT_SIGNING_KEY = SEED
    settings.RECEIPT_PREVIOUS_PUBLIC_KEYS = [receipts.public_b64(derived.public_key())]
    document = Client().get(WELL_KNOWN).json()
    configured = receipts.load_private_key(SEED).public_key()
    assert [(k["key_id"], k["current"]) for k in document["keys"]] == [
        (receipts.key_id(configured), True), (receipts.key_id(derived.public_key()), False)]
    assert receipts.verify(scored.receipt, published()).trusted  # issued before the rotation: still verifies
    again = score(submission_rescore(submission=scored, by=organizer, reason="after the rotation"))
    assert again.receipt["key_id"] == receipts.key_id(configured)
    assert receipts.verify(download(alice, again), published()).trusted
    settings.RECEIPT_PREVIOUS_PUBLIC_KEYS = []  # the old key withdrawn: its receipts no longer verify
    with pytest.raises(ReceiptError, match="not one of the trusted keys"):
        receipts.verify(scored.receipt, published())


def test_a_rotated_secret_key_rotates_the_derived_key(scored, settings):
    before = receipts.load_public_keys(Client().get(WELL_KNOWN).content)[0]
    settings.SECRET_KEY = settings.SECRET_KEY + "-rotated"
    after = receipts.load_public_keys(Client().get(WELL_KNOWN).content)[0]
    assert receipts.key_id(before) != receipts.key_id(after)
    assert receipts.key_id(after) == receipts.key_id(receipts.derive_private_key(settings.SECRET_KEY).public_key())


def test_the_well_known_document_is_public_and_cacheable(db):
    response = Client().get(WELL_KNOWN)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "public" in response["Cache-Control"] and "max-age=3600" in response["Cache-Control"]
    body = response.json()
    assert body["algorithm"] == "Ed25519" and len(body["keys"]) == 1
    (entry,) = body["keys"]
    assert set(entry) == {"key_id", "public_key", "pem", "current"} and entry["current"] is True
    assert receipts.key_id(receipts.load_public_keys(entry["pem"])[0]) == entry["key_id"]


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"x" * 31).decode()])
def test_it_refuses_a_bad_signing_key_setting(monkeypatch, value):
    monkeypatch.setenv("RECEIPT_SIGNING_KEY", value)
    with pytest.raises(ImproperlyConfiguredEnv, match="RECEIPT_SIGNING_KEY"):
        env_base64("RECEIPT_SIGNING_KEY", size=32)
    monkeypatch.setenv("RECEIPT_SIGNING_KEY", SEED)
    assert env_base64("RECEIPT_SIGNING_KEY", size=32) == SEED


# --- who may download one ---------------------------------------------------------------------


def test_whoever_sees_a_public_scored_submission_gets_its_receipt(scored, alice, bob, carol, eve, organizer):
    for user in (None, alice, bob, carol, eve, organizer):
        assert download(user, scored)["signature"] == scored.receipt["signature"]


def test_a_private_submission_s_receipt_is_its_team_s_and_the_organizers(alice, bob, carol, eve, organizer, submit,
                                                                          score):
    private = score(submit(alice, is_public=False))
    for user in (alice, bob, organizer):
        assert download(user, private)["payload"]["submission"] == private.pk
    missing = assert_error(client_for(carol).get(f"/api/v1/submissions/{private.pk + 1000}/receipt/"), 404)
    for user in (None, carol, eve):
        body = assert_error(client_for(user).get(url(private)), 404)
        assert body["error"] == missing["error"].replace(str(private.pk + 1000), str(private.pk))


def test_a_submission_without_a_receipt_answers_409(alice, submit, score):
    queued = submit(alice)
    assert "has not been scored" in assert_error(client_for(alice).get(url(queued)), 409)["error"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "no predictions here")
    failed = submit(alice, method_name="broken", data=buffer.getvalue())
    score(failed)
    assert Submission.objects.get(pk=failed.pk).status == Submission.Status.FAILED
    assert assert_error(client_for(alice).get(url(failed)), 409)["error"].startswith(f"Submission {failed.pk} has no "
                                                                                      "receipt")


def test_the_ladder_hides_the_receipt_from_all_but_organizers_until_it_ends(scored, phase, alice, carol, organizer):
    phase.ladder, phase.ends_at = True, timezone.now() + dt.timedelta(days=3)
    phase.save()
    for user in (None, alice, carol):
        body = assert_error(client_for(user).get(url(scored)), 403)
        assert "runs the Ladder" in body["error"] and f"{phase.ends_at.astimezone(dt.UTC):%Y-%m-%d %H:%M}" in \
            body["error"]
    assert receipts.verify(download(organizer, scored), published()).trusted
    page = Client()
    page.force_login(alice)
    assert b"data-receipt" not in page.get(f"/submissions/{scored.pk}/").content
    page.force_login(organizer)
    assert b"data-receipt" in page.get(f"/submissions/{scored.pk}/").content
    phase.ends_at = timezone.now() - dt.timedelta(minutes=1)  # ended: the exact numbers are revealed
    phase.save()
    assert download(alice, scored)["signature"] == scored.receipt["signature"]


def test_the_submission_page_links_the_receipt(scored, alice, submit):
    page = Client()
    page.force_login(alice)
    html = page.get(f"/submissions/{scored.pk}/").content.decode()
    assert f'href="{url(scored)}"' in html and f'download="egomask-receipt-{scored.pk}.json"' in html
    assert scored.receipt["key_id"] in html and f'href="{WELL_KNOWN}"' in html
    followed = page.get(url(scored))  # the link works with the site's session, no token
    assert followed.status_code == 200 and receipts.loads(followed.content) == scored.receipt
    queued = submit(alice, method_name="Waiting")
    assert "data-receipt" not in page.get(f"/submissions/{queued.pk}/").content.decode()


def test_the_receipt_key_command_prints_the_published_keys_and_makes_new_ones(db, settings):
    out = io.StringIO()
    call_command("receipt_key", stdout=out)
    (entry,) = Client().get(WELL_KNOWN).json()["keys"]
    assert out.getvalue().split() == [entry["key_id"], entry["public_key"], "current", "(derived", "from",
                                      "SECRET_KEY)"]
    new = io.StringIO()
    call_command("receipt_key", "--new", stdout=new)
    settings.RECEIPT_SIGNING_KEY = new.getvalue().strip()
    settings.RECEIPT_PREVIOUS_PUBLIC_KEYS = [entry["public_key"]]
    out = io.StringIO()
    call_command("receipt_key", stdout=out)
    key = receipts.load_private_key(settings.RECEIPT_SIGNING_KEY).public_key()
    assert out.getvalue().splitlines() == [f"{receipts.key_id(key)}  {receipts.public_b64(key)}  current "
                                           "(RECEIPT_SIGNING_KEY)", f"{entry['key_id']}  {entry['public_key']}  "
                                           "previous"]
