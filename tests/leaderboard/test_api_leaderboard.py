import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from leaderboard.challenges.models import Phase
from scoring import METRICS

from .apiclient import assert_error, client_for


@pytest.fixture
def board(alice, carol, organizer, phase, submit, score):
    """Team A (perfect) above Team C (noisy), and an organizer's baseline (good) between them, unranked."""
    return {
        "alice": score(submit(alice, "perfect", method_name="Perfect")),
        "carol": score(submit(carol, "noisy", method_name="=Noisy")),
        "baseline": score(submit(organizer, "good", method_name="Baseline", is_baseline=True)),
    }


def test_it_ranks_the_rows(phase, board):
    r = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/")
    assert r.status_code == 200
    body = r.json()
    assert (body["phase"], body["split"], body["metric"], body["visible"]) == (phase.pk, "overall", "IoU_gold_pred",
                                                                               True)
    rows = body["rows"]
    assert [(row["rank"], row["team"], row["method"], row["is_baseline"]) for row in rows] == [
        (1, "Team A", "Perfect", False), (None, None, "Baseline", True), (2, "Team C", "=Noisy", False)]
    # Team rows carry no provenance; a baseline says where it comes from (here: uploaded, not made by a runner).
    assert [row["baseline"] for row in rows] == [None, {"kind": "uploaded", "runner": None, "version": None}, None]
    first = rows[0]
    assert first["submission_id"] == board["alice"].pk and first["scores"]["IoU_gold_pred"] == 100.0
    assert set(first["scores"]) == {"T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred"}
    assert first["submitted_at"].endswith("Z") and first["n_expressions"] > 0


def test_it_shows_one_board_per_split_and_sorts_by_another_metric(phase, board):
    body = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=short&metric=T_recall").json()
    assert (body["split"], body["metric"]) == ("short", "T_recall")
    values = [row["scores"]["T_recall"] for row in body["rows"]]
    assert values == sorted(values, reverse=True)


def test_it_refuses_an_unknown_split_or_metric(phase):
    body = assert_error(client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=huge"), 400)
    assert body["error"].startswith("split:")
    assert_error(client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?metric=F1"), 400)
    phase.splits.filter(code="long").delete()
    body = assert_error(client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=long"), 400)
    assert body["detail"]["splits"] == ["short", "medium", "overall"]
    assert_error(client_for().get("/api/v1/phases/999999/leaderboard/"), 404)


def test_it_downloads_the_board_as_csv(phase, board):
    r = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard.csv?split=overall")
    assert r.status_code == 200
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    assert r["Content-Disposition"] == 'attachment; filename="egomask-test-overall.csv"'
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == ["rank", "team", "method", "is_baseline", "T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred",
                       "submitted_at", "submission_id", "baseline",
                       *(f"{m}_ci_{end}" for m in METRICS for end in ("low", "high")), "tie_group"]
    # Perfect predictions: every resample of every video gives 100.
    assert rows[1][11:19] == ["100.0"] * 8 and rows[1][19] == "1"
    assert [row[10] for row in rows[1:]] == ["", "uploaded", ""]  # an organizer's upload, not a runner's
    assert [row[:4] for row in rows[1:]] == [["1", "Team A", "Perfect", "false"], ["", "", "Baseline", "true"],
                                             ["2", "Team C", "'=Noisy", "false"]]  # never a formula
    assert float(rows[1][7]) == 100.0 and rows[1][9] == str(board["alice"].pk)
    assert rows[1][8] == board["alice"].submitted_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    # A client that asks for CSV explicitly gets it too.
    assert client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard.csv", HTTP_ACCEPT="text/csv").status_code == 200


def test_it_keeps_a_private_board_empty_until_its_reveal(alice, organizer, phase, board):
    reveal = timezone.now() + dt.timedelta(days=3)
    Phase.objects.filter(pk=phase.pk).update(visibility=Phase.Visibility.PRIVATE, reveal_at=reveal)
    for viewer in (None, alice):
        body = client_for(viewer).get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()
        assert (body["visible"], body["rows"]) == (False, [])
        assert "private until" in body["message"] and body["reveal_at"].endswith("Z")
    body = assert_error(client_for(alice).get(f"/api/v1/phases/{phase.pk}/leaderboard.csv"), 403)
    assert "private until" in body["error"] and body["detail"]["reveal_at"]
    assert len(client_for(organizer).get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()["rows"]) == 3
    assert client_for(organizer).get(f"/api/v1/phases/{phase.pk}/leaderboard.csv").status_code == 200
    Phase.objects.filter(pk=phase.pk).update(reveal_at=timezone.now() - dt.timedelta(seconds=1))
    assert len(client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/").json()["rows"]) == 3
