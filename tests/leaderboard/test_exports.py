"""A phase's exports for its organizers: every submission's metadata and scores (CSV, JSON), the boards as the
organizers see them, the per-expression results zipped with a manifest; streamed; 404 to anyone else; the
export_phase command writes the same files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leaderboard.baselines.models import ReportedResult
from leaderboard.challenges.models import Challenge, Host, Phase
from leaderboard.submissions import exports
from leaderboard.submissions.boards import board_refresh
from leaderboard.submissions.models import FailureKind, Score, Submission

from .apiclient import assert_error, client_for
from .conftest import make_user

EXACT = 12.345678901234567  # more digits than any rounding for display keeps


@pytest.fixture
def host(challenge):
    user = make_user("hector")
    Host.objects.create(challenge=challenge, user=user, role=Host.Role.ORGANIZER)
    return user


@pytest.fixture
def viewer(challenge):
    user = make_user("vera")
    Host.objects.create(challenge=challenge, user=user, role=Host.Role.VIEWER)
    return user


@pytest.fixture
def other_host(db):
    draft = Challenge.objects.create(slug="draft", title="Draft", is_published=False)
    user = make_user("olga")
    Host.objects.create(challenge=draft, user=user, role=Host.Role.ORGANIZER)
    return user


@pytest.fixture
def made(phase, alice, bob, carol, organizer, submit, score):
    """A scored submission of Team A (one metric set to EXACT), a private one of Team A, a failed one of Team C,
    a hidden finished one of Team C, an organizer's baseline and a reported row."""
    scored = score(submit(alice, "good", method_name="Good method"))
    assert scored.status == Submission.Status.FINISHED, scored.failure_message
    Score.objects.filter(submission=scored, split="overall").update(IoU_gold_pred=EXACT)
    private = submit(bob, method_name="Private one", is_public=False)
    failed = submit(carol, method_name="Broken")
    Submission.objects.filter(pk=failed.pk).update(status=Submission.Status.FAILED, failure_kind=FailureKind.INVALID,
                                                   failure_message="Frame 12 of video 'v3' is missing.")
    hidden = score(submit(carol, "noisy", method_name="../../etc/passwd é"))
    Submission.objects.filter(pk=hidden.pk).update(hidden=True)
    baseline = score(submit(organizer, "perfect", method_name="Baseline", is_baseline=True))
    ReportedResult.objects.create(phase=phase, method="Paper method", source_url="https://example.org/p",
                                  values={"overall": {"IoU_gold_pred": 7.25}})
    board_refresh(phase_id=phase.pk)
    return {"scored": scored, "private": private, "failed": failed, "hidden": hidden, "baseline": baseline}


def _get(user, phase, name):  # type: ignore[no-untyped-def]
    return client_for(user).get(f"/api/v1/phases/{phase.pk}/export/{name}")


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    assert isinstance(response, StreamingHttpResponse), type(response)
    return b"".join(response.streaming_content)


def test_it_exports_every_submission_as_csv_with_every_digit(phase, made, host, alice, carol):
    response = _get(host, phase, "submissions.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="egomask-test-submissions.csv"'
    text = _body(response).decode()
    rows = {int(row["id"]): row for row in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {s.pk for s in made.values()}
    scored = rows[made["scored"].pk]
    assert (scored["team"], scored["submitter"], scored["status"], scored["is_public"]) == (
        "Team A", "alice", "finished", "true")
    assert float(scored["overall.IoU_gold_pred"]) == EXACT and scored["overall.IoU_gold_pred"] == repr(EXACT)
    stored = Score.objects.get(submission=made["scored"], split="short")
    assert float(scored["short.T_recall"]) == stored.T_recall
    assert int(scored["short.n_expressions"]) == stored.n_expressions
    assert scored["sha256"] == made["scored"].file_sha256 and int(scored["size"]) == made["scored"].file_size
    assert scored["scorer_version"] and scored["gt_version"] and scored["finished_at"].endswith("Z")
    failed = rows[made["failed"].pk]
    assert (failed["status"], failed["failure_kind"], failed["failure_message"]) == (
        "failed", "invalid", "Frame 12 of video 'v3' is missing.")
    assert failed["overall.IoU_gold_pred"] == "" and failed["team"] == "Team C"
    assert rows[made["hidden"].pk]["hidden"] == "true" and rows[made["baseline"].pk]["is_baseline"] == "true"
    assert rows[made["private"].pk]["is_public"] == "false" and rows[made["private"].pk]["submitter"] == "bob"
    assert "@" not in text  # no e-mail address, ever
    assert list(rows[made["scored"].pk])[-16:] == exports.SCORE_COLUMNS[-16:]


def test_it_exports_the_submissions_as_json_with_the_scores_nested(phase, made, viewer):
    body = json.loads(_body(_get(viewer, phase, "submissions.json")))
    assert (body["challenge"], body["phase"]["id"], body["phase"]["slug"]) == ("egomask", phase.pk, "test")
    records = {record["id"]: record for record in body["submissions"]}
    assert len(records) == 5 and list(records) == sorted(records)
    scored = records[made["scored"].pk]
    assert scored["scores"]["overall"]["IoU_gold_pred"] == EXACT  # the float itself, not a rounded one
    assert set(scored["scores"]) == {"short", "medium", "long", "overall"}
    assert set(scored["scores"]["short"]) == {"T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred", "n_expressions"}
    assert records[made["failed"].pk]["scores"] == {} and records[made["failed"].pk]["failure_kind"] == "invalid"
    assert records[made["baseline"].pk]["team"] is None and records[made["baseline"].pk]["submitter"] == "organizer"
    assert "@" not in json.dumps(body)


def test_it_exports_the_boards_as_organizers_see_them_before_the_reveal(phase, made, host):
    Phase.objects.filter(pk=phase.pk).update(visibility=Phase.Visibility.PRIVATE,
                                             reveal_at=timezone.now() + dt.timedelta(days=2))
    assert client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()["rows"] == []  # the public: nothing
    body = json.loads(_body(_get(host, phase, "boards.json")))
    boards = {board["split"]: board for board in body["boards"]}
    assert list(boards) == ["short", "medium", "long", "overall"] and body["metric"] == "IoU_gold_pred"
    overall = boards["overall"]
    assert overall["public"] is False
    methods = [(row["position"], row["rank"], row["team"], row["method"], row["is_reported"])
               for row in overall["rows"]]
    # The baseline (perfect) first, unranked; Team A ranked 1 (its hidden and private entries are left out,
    # as on the board); the paper's row flagged as reported.
    assert methods == [(1, None, None, "Baseline", False), (2, 1, "Team A", "Good method", False),
                       (3, None, None, "Paper method", True)]
    assert overall["rows"][1]["IoU_gold_pred"] == EXACT and overall["rows"][2]["IoU_gold_pred"] == 7.25

    rows = list(csv.DictReader(io.StringIO(_body(_get(host, phase, "boards.csv")).decode())))
    overall_rows = [row for row in rows if row["split"] == "overall"]
    assert [(row["rank"], row["method"], row["is_reported"], row["baseline"]) for row in overall_rows] == [
        ("", "Baseline", "false", "uploaded"), ("1", "Good method", "false", ""),
        ("", "Paper method", "true", "reported:https://example.org/p")]
    assert float(overall_rows[1]["IoU_gold_pred"]) == EXACT and overall_rows[2]["T_recall"] == ""
    assert {row["split"] for row in rows} == {"short", "medium", "long", "overall"}


def test_it_zips_the_per_expression_results_with_a_manifest(phase, made, host):
    response = _get(host, phase, "results.zip")
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(_body(response)))
    assert archive.testzip() is None
    finished = [made["scored"], made["hidden"], made["baseline"]]
    names = {s.pk: exports.results_entry_name(submission_id=s.pk, team=s.team.name if s.team else None,
                                              method=s.method_name) for s in finished}
    assert names[made["hidden"].pk] == f"{made['hidden'].pk}-Team_C-etc_passwd_e.csv"
    assert names[made["baseline"].pk] == f"{made['baseline'].pk}-baseline-Baseline.csv"
    assert sorted(archive.namelist()) == sorted([*names.values(), "manifest.csv"])
    for submission in finished:
        with submission.details.open("rb") as handle:
            assert archive.read(names[submission.pk]) == handle.read()  # the stored file, byte for byte
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [int(row["submission_id"]) for row in manifest] == sorted(names)
    by_id = {int(row["submission_id"]): row for row in manifest}
    assert by_id[made["hidden"].pk]["hidden"] == "true" and by_id[made["hidden"].pk]["team"] == "Team C"
    assert int(by_id[made["scored"].pk]["bytes"]) == made["scored"].details.size
    assert all(row["file"] == names[int(row["submission_id"])] and row["note"] == "" for row in manifest)


def test_it_lists_a_results_file_missing_from_storage_in_the_manifest(phase, made, host):
    made["hidden"].details.storage.delete(made["hidden"].details.name)
    archive = zipfile.ZipFile(io.BytesIO(_body(_get(host, phase, "results.zip"))))
    manifest = {int(row["submission_id"]): row for row in csv.DictReader(
        io.StringIO(archive.read("manifest.csv").decode()))}
    assert manifest[made["hidden"].pk]["file"] == "" and "missing" in manifest[made["hidden"].pk]["note"]
    assert len(archive.namelist()) == 3  # the two others and the manifest


def test_it_answers_404_to_whoever_does_not_organize_the_challenge(phase, made, alice, other_host, eve):
    for name in exports.EXPORTS:
        for user in (alice, other_host, eve):
            missing = assert_error(client_for(user).get(f"/api/v1/phases/999999/export/{name}"), 404)
            found = assert_error(_get(user, phase, name), 404)
            assert found["error"] == missing["error"].replace("999999", str(phase.pk))
        assert_error(_get(None, phase, name), 401)  # a script that forgot its token is told so


def test_it_reads_the_submissions_in_batches_of_two_queries(phase, made, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 2)
    with CaptureQueriesContext(connection) as queries:
        records = list(exports.submission_records(phase=phase))
    assert len(records) == 5
    assert len(queries) == 2 * 3 + 1  # three batches of (submissions, their scores), and the empty one


def test_it_writes_every_export_with_the_command(phase, made, host, tmp_path, settings):
    out = io.StringIO()
    call_command("export_phase", "--phase", "egomask/test", "--out", str(tmp_path / "out"), "--as", "hector",
                 stdout=out)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"egomask-test-{name}" for name in exports.EXPORTS)
    rows = list(csv.DictReader((tmp_path / "out" / "egomask-test-submissions.csv").open()))
    assert len(rows) == 5
    body = json.loads((tmp_path / "out" / "egomask-test-boards.json").read_text())
    assert {board["split"] for board in body["boards"]} == {"short", "medium", "long", "overall"}
    assert "manifest.csv" in zipfile.ZipFile(tmp_path / "out" / "egomask-test-results.zip").namelist()
    assert out.getvalue().count("bytes)") == len(exports.EXPORTS)


def test_it_refuses_the_command_for_a_non_organizer_or_a_bad_phase(phase, made, alice, tmp_path):
    tmp_path = tmp_path / "out"
    with pytest.raises(CommandError, match="'alice' does not organize the challenge 'egomask'"):
        call_command("export_phase", "--phase", "egomask/test", "--out", str(tmp_path), "--as", "alice")
    with pytest.raises(CommandError, match="CHALLENGE/PHASE"):
        call_command("export_phase", "--phase", "test", "--out", str(tmp_path), "--as", "alice")
    with pytest.raises(CommandError, match="no phase 'nope'"):
        call_command("export_phase", "--phase", "egomask/nope", "--out", str(tmp_path), "--as", "alice")
    with pytest.raises(CommandError, match="There is no user .nobody"):
        call_command("export_phase", "--phase", "egomask/test", "--out", str(tmp_path), "--as", "nobody")
    assert not tmp_path.exists()


def test_it_makes_safe_file_names_from_what_users_typed():
    assert exports.safe_name("../../etc/passwd") == "etc_passwd"
    assert exports.safe_name("Équipe Ünïcode") == "Equipe_Unicode"
    assert exports.safe_name("...") == "unnamed" and exports.safe_name("日本") == "unnamed"
    assert len(exports.safe_name("x" * 500)) == 60
    assert exports.results_entry_name(submission_id=7, team=None, method="a/b") == "7-baseline-a_b.csv"
