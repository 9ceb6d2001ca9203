import io
import zipfile

import pytest

from leaderboard.submissions.services import submission_create

from .apiclient import assert_error, client_for

METRIC_NAMES = {"T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred"}


def url(submission) -> str:
    return f"/api/v1/submissions/{submission.pk}/"


def test_it_shows_the_scores_once_scored(alice, bob, phase, submit, score):
    submission = submit(alice, "perfect")
    assert client_for(alice).get(url(submission)).json()["scores"] == {}
    score(submission)
    r = client_for(bob).get(url(submission))  # a teammate
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "finished" and body["failure_message"] == "" and body["problems"] == []
    assert isinstance(body["warnings"], list)
    assert list(body["scores"]) == ["short", "medium", "long", "overall"]
    for split, metrics in body["scores"].items():
        assert set(metrics) == METRIC_NAMES
        assert metrics == submission.scores.get(split=split).metrics()
    assert body["scores"]["overall"]["IoU_gold_pred"] == 100.0
    assert body["scorer_version"] and body["gt_version"]
    assert body["started_at"].endswith("Z") and body["finished_at"].endswith("Z")


def test_it_says_why_a_submission_failed(alice, phase, score):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "no predictions here")
    submission = score(submission_create(phase=phase, user=alice, file=io.BytesIO(buffer.getvalue()),
                                         method_name="empty"))
    body = client_for(alice).get(url(submission)).json()
    assert body["status"] == "failed"
    assert body["failure_message"].startswith("Your submission could not be scored")
    assert body["problems"]


def test_it_lets_the_team_change_the_method_fields(alice, bob, phase, submit):
    submission = submit(alice, method_name="predictions")
    r = client_for(bob).patch(url(submission), {"method_name": "  Mask net  ", "code_url": "https://example.org/c"},
                              format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["method_name"], r.json()["code_url"], r.json()["method_url"]) == (
        "Mask net", "https://example.org/c", "")
    submission.refresh_from_db()
    assert (submission.method_name, submission.code_url) == ("Mask net", "https://example.org/c")


@pytest.mark.parametrize(("fields", "text"), [({"method_name": " "}, "method_name: This field may not be blank."),
                                              ({"method_url": "javascript:alert(1)"}, "http:// or https://"),
                                              ({"method_name": "x" * 201}, "method_name")])
def test_it_checks_changed_method_fields_as_on_submit(alice, phase, submit, fields, text):
    submission = submit(alice, method_name="Kept")
    body = assert_error(client_for(alice).patch(url(submission), fields, format="json"), 400)
    assert text in body["error"]
    submission.refresh_from_db()
    assert (submission.method_name, submission.method_url) == ("Kept", "")


def test_it_refuses_method_changes_from_others(alice, carol, phase, submit, score):
    submission = score(submit(alice, method_name="Kept"))  # on the public board: carol may see it
    assert_error(client_for(carol).patch(url(submission), {"method_name": "Mine"}, format="json"), 403)
    assert_error(client_for(None).patch(url(submission), {"method_name": "Mine"}, format="json"), 401)
    submission.refresh_from_db()
    assert submission.method_name == "Kept"
