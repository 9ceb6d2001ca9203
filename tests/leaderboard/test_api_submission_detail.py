import io
import zipfile

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


def test_it_hides_a_teams_submission_from_others_until_it_is_on_the_board(alice, carol, eve, phase, submit, score):
    submission = submit(alice)
    for outsider in (eve, carol, None):
        assert_error(client_for(outsider).get(url(submission)), 404)
    score(submission)  # now on the public board: anyone may see it, but not the team's diagnostics
    body = client_for(eve).get(url(submission)).json()
    assert body["status"] == "finished" and body["scores"]["overall"]
    assert body["warnings"] == [] and body["problems"] == []


def test_it_keeps_a_private_submission_to_its_team(alice, eve, organizer, phase, submit, score):
    submission = score(submit(alice, is_public=False))
    assert_error(client_for(eve).get(url(submission)), 404)
    assert client_for(organizer).get(url(submission)).status_code == 200
    assert_error(client_for(eve).get("/api/v1/submissions/999999/"), 404)
