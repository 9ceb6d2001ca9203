"""Reported (paper) results: imported idempotently from a JSON file, shown on the boards (API, CSV,
HTML) marked as reported, with only the metrics the paper gives, and never ranked."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from leaderboard.baselines.models import ReportedResult
from leaderboard.baselines.reported import PAPER_FILE, reported_parse
from leaderboard.errors import ApplicationError

from .apiclient import client_for

PAPER = "https://arxiv.org/abs/2508.00518"


def import_paper(phase_slug: str = "test") -> str:
    out = io.StringIO()
    call_command("import_reported", "--phase", phase_slug, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _acting_superuser(request):
    """The command acts as the only superuser (the organizer persona) unless told --as."""
    if "db" in request.fixturenames or "phase" in request.fixturenames:
        request.getfixturevalue("organizer")


def test_it_refuses_a_participant(phase, alice):
    with pytest.raises(CommandError, match="alice may not change the reported rows"):
        call_command("import_reported", "--phase", "test", "--as", "alice", stdout=io.StringIO())
    assert not phase.reported_results.exists()


@pytest.fixture
def board(alice, carol, phase, submit, score):
    """Team A (perfect) and Team C (noisy) on the phase."""
    return {"alice": score(submit(alice, "perfect", method_name="Perfect")),
            "carol": score(submit(carol, "noisy", method_name="Noisy"))}


def test_it_imports_the_papers_table_once(phase):
    assert "6 new, 0 updated, 0 unchanged" in import_paper()
    assert "0 new, 0 updated, 6 unchanged" in import_paper()
    gsam = ReportedResult.objects.get(phase=phase, method="Grounded-SAM2")
    assert gsam.values == {"short": {"IoU_gold_pred": 49.95}, "medium": {"IoU_gold_pred": 25.73},
                           "long": {"IoU_gold_pred": 24.80}}
    assert gsam.source_url == PAPER and "Fine-grained Spatiotemporal Grounding" in gsam.citation
    assert ReportedResult.objects.count() == 6


def test_it_updates_a_changed_number_and_leaves_other_methods_alone(phase, tmp_path):
    import_paper()
    data = json.loads(PAPER_FILE.read_text())
    data["results"] = [{"method": "Sa2VA-4B", "values": {"short": {"IoU_gold_pred": 29.5}}}]
    changed = tmp_path / "fix.json"
    changed.write_text(json.dumps(data))
    out = io.StringIO()
    call_command("import_reported", str(changed), "--phase", "test", stdout=out)
    assert "0 new, 1 updated, 0 unchanged" in out.getvalue()
    assert ReportedResult.objects.get(method="Sa2VA-4B").values == {"short": {"IoU_gold_pred": 29.5}}
    assert ReportedResult.objects.count() == 6


@pytest.mark.parametrize(("results", "message"), [
    ([{"method": "X", "values": {"huge": {"IoU_gold_pred": 1}}}], "unknown split 'huge'"),
    ([{"method": "X", "values": {"short": {"F1": 1}}}], "unknown metric 'F1'"),
    ([{"method": "X", "values": {"short": {"IoU_gold_pred": 140}}}], "must be a percentage"),
    ([{"method": "X", "values": {}}], "must map a split"),
    ([{"values": {"short": {"IoU_gold_pred": 1}}}], "needs a \"method\""),
    ([{"method": "X", "values": {"short": {"T_recall": 1}}}] * 2, "listed twice"),
])
def test_it_says_what_is_wrong_with_a_file(results, message):
    with pytest.raises(ApplicationError, match=message):
        reported_parse(json.dumps({"source_url": PAPER, "results": results}))


def test_it_refuses_a_file_without_a_web_source(phase, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"source_url": "ftp://x", "results": [{"method": "X", "values": {
        "short": {"T_recall": 1}}}]}))
    with pytest.raises(CommandError, match="source_url must be an http"):
        call_command("import_reported", str(bad), "--phase", "test")
    assert not ReportedResult.objects.exists()


def test_it_shows_reported_rows_unranked_with_only_the_papers_metric(phase, board):
    import_paper()
    rows = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=short").json()["rows"]
    teams = [(r["rank"], r["team"]) for r in rows if r["team"]]
    assert teams == [(1, "Team A"), (2, "Team C")]  # the paper's rows take no rank and no team's place
    reported = [r for r in rows if r["baseline"] and r["baseline"]["kind"] == "reported"]
    assert [r["method"] for r in reported] == ["Grounded-SAM2", "Sa2VA-26B", "Sa2VA-4B (+FT on EgoMask-Train)",
                                               "Sa2VA-4B", "VideoLISA-3.8B (+FT)", "VideoLISA-3.8B"]  # by value
    gsam = reported[0]
    assert (gsam["rank"], gsam["is_baseline"], gsam["submission_id"], gsam["n_expressions"]) == (None, True, None,
                                                                                                None)
    assert gsam["scores"] == {"T_recall": None, "IoU_all": None, "IoU_gold": None, "IoU_gold_pred": 49.95}
    assert gsam["baseline"] == {"kind": "reported", "runner": None, "version": None, "source": PAPER,
                                "citation": gsam["baseline"]["citation"]}
    # Sorted by another metric the paper does not give, they come last.
    rows = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=short&metric=T_recall").json()["rows"]
    assert [r["team"] for r in rows[:2]] == ["Team A", "Team C"] and all(r["rank"] is None for r in rows[2:])
    # The paper gives no overall number: no reported row there.
    overall = client_for().get(f"/api/v1/phases/{phase.pk}/leaderboard/?split=overall").json()["rows"]
    assert [r["team"] for r in overall] == ["Team A", "Team C"]


def test_it_lists_reported_rows_in_the_csv(phase, board):
    import_paper()
    rows = list(csv.reader(io.StringIO(client_for().get(
        f"/api/v1/phases/{phase.pk}/leaderboard.csv?split=long").content.decode())))
    gsam = next(row for row in rows if row[2] == "Grounded-SAM2")
    # no intervals and no tie group: a paper's number has no per-expression results
    assert gsam == ["", "", "Grounded-SAM2", "true", "", "", "", "24.8", "", "", f"reported:{PAPER}", *[""] * 9]


def test_it_marks_reported_rows_on_the_html_board(phase, board, client):
    import_paper()
    html = client.get("/challenges/egomask/phases/test/leaderboard/short/").content.decode()
    assert html.count(">reported (paper)</span>") == 6
    assert f'<a href="{PAPER}" rel="noopener nofollow">Grounded-SAM2</a>' in html
