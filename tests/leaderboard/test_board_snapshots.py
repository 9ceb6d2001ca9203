"""Board snapshots: a numbered copy of a revealed board (JSON with receipts, CSV) at a stable address, equal to the
board when it was taken and never changed after; refused before the reveal and under a running Ladder; taken by
the server at the reveal and at the end of a phase; readable by whoever may see the board exactly."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest
from playwright.sync_api import expect
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from leaderboard.challenges.models import Challenge, Host, Phase
from leaderboard.errors import Conflict, NotAllowed
from leaderboard.submissions import snapshots
from leaderboard.submissions.boards import board_refresh
from leaderboard.submissions.models import BoardRow, BoardSnapshot, Submission
from leaderboard.submissions.moderation import submission_hide
from leaderboard.submissions.selectors import board_get
from leaderboard.submissions.tasks import snapshot_boards
from scoring import METRICS

from .apiclient import client_for
from .conftest import make_user

PAGE = "/challenges/egomask/phases/{slug}/snapshots/"
RECEIPT = {"payload": {"zip_sha256": "ab" * 32, "scores": {}}, "key_id": "test-key-1", "signature": "c2lnbmVk"}


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
def board(phase, alice, carol, organizer, submit, score):
    """Team A (good, with a receipt and intervals), Team C (noisy, without a receipt), a perfect baseline (with the
    worker's own receipt): the phase's boards."""
    good = score(submit(alice, "good", method_name="Good method", method_url="https://example.org/good"))
    noisy = score(submit(carol, "noisy", method_name="Noisy method"))
    baseline = score(submit(organizer, "perfect", method_name="Baseline", is_baseline=True))
    assert {s.status for s in (good, noisy, baseline)} == {Submission.Status.FINISHED}
    Submission.objects.filter(pk=good.pk).update(receipt=RECEIPT)
    Submission.objects.filter(pk=noisy.pk).update(receipt={})  # as if scored before receipts existed
    board_refresh(phase_id=phase.pk)
    # The intervals and tie groups come from the statistics' own refresh; here, as that would store them.
    BoardRow.objects.filter(phase=phase, submission=good).update(
        ci={m: [1.25, 2.5] for m in METRICS}, tie_group=1)
    return {"good": good, "noisy": noisy, "baseline": baseline}


def _document(snapshot: BoardSnapshot) -> dict:
    return json.loads(snapshot.content)


def _rows(document: dict, split: str) -> list[dict]:
    return next(board["rows"] for board in document["boards"] if board["split"] == split)


def test_it_copies_the_board_as_served_with_receipts_and_versions(phase, board, host):
    snapshot = snapshots.board_snapshot_take(phase=phase, by=host, reason="camera-ready")
    document = _document(snapshot)
    assert (snapshot.number, snapshot.created_by, snapshot.reason) == (1, host, "camera-ready")
    assert snapshot.sha256 == hashlib.sha256(snapshot.content.encode()).hexdigest()
    assert (document["number"], document["challenge"]["slug"], document["phase"]["slug"]) == (1, "egomask", "test")
    assert document["url"] == "http://127.0.0.1:8000/challenges/egomask/phases/test/snapshots/1.json"
    assert document["board_version"] == phase.board.version == snapshot.board_version
    assert document["primary_metric"] == phase.primary_metric
    assert document["gt_versions"] == [phase.ground_truth.version] == snapshot.gt_versions
    assert [board["split"] for board in document["boards"]] == ["short", "medium", "long", "overall"]
    for split in ("short", "medium", "long", "overall"):
        served = board_get(phase=phase, split=split, include_reported=True).rows
        copied = _rows(document, split)
        assert [(r["position"], r["rank"], r["team"], r["method"], r["submission_id"], r["is_baseline"])
                for r in copied] == [(i, r.rank, r.team, r.method, r.submission_id, r.is_baseline)
                                     for i, r in enumerate(served, 1)]
        assert [r["scores"] for r in copied] == [r.scores for r in served]  # every digit
    overall = {row["submission_id"]: row for row in _rows(document, "overall")}
    good = overall[board["good"].pk]
    assert good["receipt"] == RECEIPT and good["ci"] == {m: [1.25, 2.5] for m in METRICS} and good["tie_group"] == 1
    assert good["file_sha256"] == board["good"].file_sha256 and good["method_url"] == "https://example.org/good"
    assert good["scorer_version"] == board["good"].scorer_version and good["gt_version"] == phase.ground_truth.version
    noisy = overall[board["noisy"].pk]
    assert noisy["receipt"] == {}  # none: said so
    stored = BoardRow.objects.get(phase=phase, split="overall", submission=board["noisy"])
    assert (noisy["ci"], noisy["tie_group"]) == (stored.ci, stored.tie_group)  # as stored, null where none
    assert overall[board["baseline"].pk]["baseline"]["kind"] == "uploaded"


def test_its_csv_parses_and_says_what_the_json_says(phase, board, host):
    snapshot = snapshots.board_snapshot_take(phase=phase, by=host)
    document = _document(snapshot)
    lines = list(csv.DictReader(io.StringIO(snapshot.csv)))
    assert list(lines[0]) == snapshots.CSV_COLUMNS
    expected = [(board["split"], row) for board in document["boards"] for row in board["rows"]]
    assert len(lines) == len(expected) == 4 * 3
    for line, (split, row) in zip(lines, expected, strict=True):
        assert (line["split"], int(line["position"]), line["team"], line["method"]) == (
            split, row["position"], row["team"] or "", row["method"])
        assert line["rank"] == ("" if row["rank"] is None else str(row["rank"]))
        assert all(float(line[m]) == row["scores"][m] for m in METRICS)  # the same floats, not rounded ones
        assert int(line["submission_id"]) == row["submission_id"] and line["file_sha256"] == row["file_sha256"]
        assert line["is_baseline"] == str(row["is_baseline"]).lower()
        ci = row["ci"] or {}
        assert [line[f"{m}.ci_low"] for m in METRICS] == [str(ci[m][0]) if ci else "" for m in METRICS]
        assert (line["receipt_key_id"], line["receipt_signature"]) == (
            row["receipt"].get("key_id", ""), row["receipt"].get("signature", ""))
    baseline_key = Submission.objects.get(pk=board["baseline"].pk).receipt["key_id"]  # the server's own key
    assert {line["receipt_key_id"] for line in lines} == {"test-key-1", "", baseline_key}


def test_a_changed_board_makes_a_new_number_and_the_old_one_stays_byte_identical(phase, board, host, bob, submit,
                                                                                  score):
    first = snapshots.board_snapshot_take(phase=phase, by=host)
    first_bytes = Client().get(PAGE.format(slug="test") + "1.json").content
    assert hashlib.sha256(first_bytes).hexdigest() == first.sha256
    # Nothing changed: the same snapshot, no new number.
    assert snapshots.board_snapshot_take(phase=phase, by=host).pk == first.pk
    # A better submission, a hidden one: the boards change, snapshot 2 shows them.
    score(submit(bob, "perfect", method_name="Perfect method"))
    submission_hide(submission=board["noisy"], by=host, reason="a test")
    second = snapshots.board_snapshot_take(phase=phase, by=host)
    assert second.number == 2 and second.board_version > first.board_version
    methods = [row["method"] for row in _rows(_document(second), "overall")]
    assert "Perfect method" in methods and "Noisy method" not in methods
    assert "Noisy method" in [row["method"] for row in _rows(_document(first), "overall")]
    first.refresh_from_db()
    assert Client().get(PAGE.format(slug="test") + "1.json").content == first_bytes
    assert hashlib.sha256(first.content.encode()).hexdigest() == first.sha256
    with pytest.raises(ValueError, match="immutable"):
        first.save()
    latest = Client().get(PAGE.format(slug="test") + "latest.json")
    assert (latest.status_code, latest["Location"]) == (302, PAGE.format(slug="test") + "2.json")


def test_it_is_served_immutable_with_its_sha256_as_etag(phase, board, host):
    snapshot = snapshots.board_snapshot_take(phase=phase, by=host)
    client = Client()
    response = client.get(PAGE.format(slug="test") + "1.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["ETag"] == f'"{snapshot.sha256}"'
    assert set(response["Cache-Control"].split(", ")) == {"public", f"max-age={365 * 24 * 3600}", "immutable"}
    assert client.get(PAGE.format(slug="test") + "1.json", HTTP_IF_NONE_MATCH=f'"{snapshot.sha256}"').status_code == 304
    as_csv = client.get(PAGE.format(slug="test") + "1.csv")
    assert as_csv.content.decode() == snapshot.csv and as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert as_csv["ETag"] == f'"{hashlib.sha256(as_csv.content).hexdigest()}"'
    page = client.get(PAGE.format(slug="test")).content.decode()
    # What to cite: the title, the address, the sha256, the date.
    assert snapshots.snapshot_title(phase=phase, snapshot=snapshot) in page
    assert "http://127.0.0.1:8000/challenges/egomask/phases/test/snapshots/1.json" in page
    assert snapshot.sha256 in page and f"{snapshot.created_at:%Y-%m-%d}" in page and "@misc{" in page
    listed = client_for().get(f"/api/v1/phases/{phase.pk}/snapshots/").json()
    assert listed["visible"] is True and [(s["number"], s["sha256"]) for s in listed["snapshots"]] == [
        (1, snapshot.sha256)]
    assert listed["snapshots"][0]["csv_url"].endswith("/snapshots/1.csv")
    # The live board links to them.
    live = client.get("/challenges/egomask/phases/test/leaderboard/overall/").content.decode()
    assert f'href="{PAGE.format(slug="test")}"' in live


def test_it_refuses_a_board_before_its_reveal(phase, board, host):
    reveal = timezone.now() + dt.timedelta(days=2)
    Phase.objects.filter(pk=phase.pk).update(visibility=Phase.Visibility.PRIVATE, reveal_at=reveal)
    phase.refresh_from_db()
    with pytest.raises(Conflict, match=f"private until {reveal:%Y-%m-%d %H:%M} UTC"):
        snapshots.board_snapshot_take(phase=phase, by=host)
    with pytest.raises(CommandError, match="private until"):
        call_command("board_snapshot", "egomask/test", "--as", "hector")
    assert not BoardSnapshot.objects.exists()
    taken = snapshots.board_snapshot_take(phase=phase, by=host, now=reveal + dt.timedelta(minutes=1))
    assert taken.number == 1


def test_it_refuses_a_running_ladder_and_takes_it_once_the_phase_ended(phase, board, host):
    ends = timezone.now() + dt.timedelta(hours=3)
    Phase.objects.filter(pk=phase.pk).update(ladder=True, ends_at=ends)
    phase.refresh_from_db()
    with pytest.raises(Conflict, match="runs the Ladder and has not ended"):
        snapshots.board_snapshot_take(phase=phase, by=host)
    assert snapshots.board_snapshots_due() == []  # the server does not take it either
    Phase.objects.filter(pk=phase.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))  # it ended
    phase.refresh_from_db()
    snapshot = snapshots.board_snapshot_take(phase=phase, by=host)
    assert snapshot.number == 1
    # The exact scores, not the Ladder's rounded ones.
    good = next(row for row in _rows(_document(snapshot), "overall") if row["submission_id"] == board["good"].pk)
    assert good["scores"] == board["good"].scores.get(split="overall").metrics()


def test_only_organizers_who_configure_take_one(phase, board, alice, viewer, host, capsys):
    for user in (alice, viewer):
        with pytest.raises(NotAllowed, match="who may configure it"):
            snapshots.board_snapshot_take(phase=phase, by=user)
    with pytest.raises(CommandError, match="who may configure it"):
        call_command("board_snapshot", "egomask/test", "--as", "vera")
    with pytest.raises(CommandError, match="CHALLENGE/PHASE"):
        call_command("board_snapshot", "test", "--as", "hector")
    call_command("board_snapshot", "egomask/test", "--as", "hector", "--reason", "for the paper")
    assert "Snapshot 1 of egomask / Test phase: http://127.0.0.1:8000/challenges/egomask/phases/test/snapshots/1.json" \
        in capsys.readouterr().out
    call_command("board_snapshot", "egomask/test", "--as", "hector")
    assert "Unchanged since snapshot 1" in capsys.readouterr().out
    snapshot = BoardSnapshot.objects.get()
    assert (snapshot.created_by, snapshot.reason) == (host, "for the paper")


def test_the_admin_action_takes_one_with_a_reason(phase, board, organizer):
    client = Client()
    client.force_login(organizer)
    response = client.post("/admin/challenges/phase/", {"action": "take_board_snapshot", "_selected_action": [phase.pk],
                                                        "reason": "before the workshop", "apply_reason": "Apply"},
                           follow=True)
    assert response.status_code == 200
    snapshot = BoardSnapshot.objects.get()
    assert (snapshot.number, snapshot.created_by, snapshot.reason) == (1, organizer, "before the workshop")
    page = client.get(f"/admin/challenges/phase/{phase.pk}/change/").content.decode()
    assert PAGE.format(slug="test") + "1.json" in page and snapshot.sha256[:16] in page


def test_the_server_takes_one_when_a_private_board_is_revealed_and_when_the_phase_ends(phase, board, bob, submit,
                                                                                      score):
    now = timezone.now()
    reveal, ends = now + dt.timedelta(hours=1), now + dt.timedelta(days=1)
    Phase.objects.filter(pk=phase.pk).update(visibility=Phase.Visibility.PRIVATE, reveal_at=reveal, ends_at=ends)
    assert snapshot_boards() == 0 and not BoardSnapshot.objects.exists()  # the task: not revealed yet
    after_reveal = reveal + dt.timedelta(minutes=5)
    assert snapshots.board_snapshots_take_due(now=after_reveal) == 1
    first = BoardSnapshot.objects.get()
    assert (first.created_by, first.reason) == (None, "taken by the server: the boards were revealed")
    assert snapshots.board_snapshots_take_due(now=after_reveal + dt.timedelta(minutes=5)) == 0  # taken already
    # The phase ends with the board as it was at the reveal: snapshot 1 shows it, no copy is made.
    assert snapshots.board_snapshots_take_due(now=ends + dt.timedelta(minutes=5)) == 0
    # A change before the end: the end makes snapshot 2.
    score(submit(bob, "perfect", method_name="Late method"))
    assert snapshots.board_snapshots_take_due(now=ends + dt.timedelta(minutes=5)) == 1
    second = BoardSnapshot.objects.get(number=2)
    assert second.reason == "taken by the server: the phase ended"
    assert "Late method" in [row["method"] for row in _rows(_document(second), "overall")]
    assert snapshots.board_snapshots_take_due(now=ends + dt.timedelta(minutes=10)) == 0


def test_the_server_takes_none_for_an_unpublished_challenge(phase, board):
    Challenge.objects.filter(pk=phase.challenge_id).update(is_published=False)
    Phase.objects.filter(pk=phase.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))
    assert snapshots.board_snapshots_take_due() == 0


@pytest.mark.parametrize("hide", ["private again", "ladder running"])
def test_a_board_that_is_not_public_shows_its_snapshots_to_its_organizers_only(phase, board, host, viewer, alice,
                                                                             eve, organizer, hide):
    snapshot = snapshots.board_snapshot_take(phase=phase, by=host)
    if hide == "private again":  # the organizers moved the reveal time after a snapshot
        Phase.objects.filter(pk=phase.pk).update(visibility=Phase.Visibility.PRIVATE,
                                                 reveal_at=timezone.now() + dt.timedelta(days=1))
    else:  # a Ladder turned on (and the end moved) after a snapshot
        Phase.objects.filter(pk=phase.pk).update(ladder=True, ends_at=timezone.now() + dt.timedelta(days=1))
    files = [PAGE.format(slug="test") + name for name in ("1.json", "1.csv", "latest.json")]
    for user in (None, alice, eve):
        client = Client()
        if user is not None:
            client.force_login(user)
        assert [client.get(path).status_code for path in files] == [404, 404, 404]
        page = client.get(PAGE.format(slug="test"))
        assert page.status_code == 200 and snapshot.sha256 not in page.content.decode()
        listed = client_for(user).get(f"/api/v1/phases/{phase.pk}/snapshots/").json()
        assert (listed["visible"], listed["snapshots"]) == (False, []) and listed["message"]
    for user in (viewer, host, organizer):
        client = Client()
        client.force_login(user)
        response = client.get(files[0])
        assert response.status_code == 200 and response.content == snapshot.content.encode()
        assert "private" in response["Cache-Control"] and "public" not in response["Cache-Control"]
        assert client.get(files[2]).status_code == 302
        assert snapshot.sha256 in client.get(PAGE.format(slug="test")).content.decode()
        listed = client_for(user).get(f"/api/v1/phases/{phase.pk}/snapshots/").json()
        assert [s["number"] for s in listed["snapshots"]] == [1]


def test_a_snapshot_of_a_phase_on_s3_carries_its_files_sha256(phase_on_s3, alice, submit, score):
    scored = score(submit(alice, "good", phase=phase_on_s3))
    assert scored.status == Submission.Status.FINISHED, scored.failure_message
    snapshot = snapshots.board_snapshot_take(phase=phase_on_s3, by=None, reason="on S3")
    row = _rows(_document(snapshot), "overall")[0]
    assert (row["submission_id"], row["file_sha256"]) == (scored.pk, scored.file_sha256)
    assert row["gt_version"] == phase_on_s3.ground_truth.version
    assert snapshot.gt_versions == [phase_on_s3.ground_truth.version]


def test_missing_snapshots_and_phases_are_404(phase):
    client = Client()
    assert client.get(PAGE.format(slug="test") + "1.json").status_code == 404
    assert client.get(PAGE.format(slug="test") + "latest.json").status_code == 404
    assert client.get(PAGE.format(slug="nope")).status_code == 404
    assert client_for().get("/api/v1/phases/999999/snapshots/").status_code == 404
    empty = client.get(PAGE.format(slug="test"))
    assert empty.status_code == 200 and "No snapshot yet" in empty.content.decode()


def test_a_reader_goes_from_the_board_to_a_snapshot_to_cite_in_the_browser(live_server, phase, board, host, page):
    snapshot = snapshots.board_snapshot_take(phase=phase, by=host, reason="camera-ready")
    page.goto(f"{live_server.url}/challenges/egomask/phases/test/leaderboard/overall/")
    page.get_by_role("link", name="Snapshots to cite").click()
    expect(page.get_by_role("heading", name="Snapshot 1")).to_be_visible()
    expect(page.locator("pre.citation").first).to_contain_text(snapshot.sha256)
    # The address to cite is the site's public one (SITE_URL), whatever host served the page.
    expect(page.get_by_role("link", name="http://127.0.0.1:8000/challenges/egomask/phases/test/snapshots/1.json"))\
        .to_be_visible()
    response = page.request.get(f"{live_server.url}/challenges/egomask/phases/test/snapshots/1.json")
    assert hashlib.sha256(response.body()).hexdigest() == snapshot.sha256
