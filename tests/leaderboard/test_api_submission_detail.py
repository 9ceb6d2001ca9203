import io
import zipfile

from leaderboard.submissions.services import submission_create

from .apiclient import client_for

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
