import io
import zipfile

from django.utils.html import escape

from leaderboard.submissions.models import Submission
from leaderboard.submissions.services import submission_create

URL = "/challenges/egomask/phases/test/submissions/"


def test_it_lists_the_team_submissions_with_live_rows(client, alice, bob, carol, submit, score):
    finished = score(submit(alice, quality="noisy", method_name="Scored one"))
    waiting = submit(bob, method_name="Waiting one")
    submit(carol, method_name="Other team")
    client.force_login(bob)
    r = client.get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert "Scored one" in html and "Waiting one" in html
    assert "Other team" not in html
    assert f'data-status-url="/submissions/{waiting.pk}/status.json" data-terminal="false"' in html
    assert f'data-status-url="/submissions/{finished.pk}/status.json" data-terminal="true"' in html
    assert "6.37" in html  # overall IoU_gold_pred of the noisy predictions
    assert 'status-finished' in html and 'status-submitted' in html


def test_it_shows_the_failure_message(client, alice, phase, score):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "no predictions in here")
    failed = score(submission_create(phase=phase, user=alice, file=io.BytesIO(buffer.getvalue()), method_name="Bad"))
    assert failed.status == Submission.Status.FAILED
    client.force_login(alice)
    r = client.get(URL)
    assert escape(failed.failure_message).encode() in r.content


def test_it_is_for_team_members_only(client, eve, phase):
    r = client.get(URL)
    assert r.status_code == 302
    assert r.url.startswith("/login/")
    client.force_login(eve)
    r = client.get(URL)
    assert r.status_code == 403
    assert b"you are not in a team" in r.content


def test_it_reports_status_as_json(client, alice, bob, submit, score):
    submission = submit(alice)
    client.force_login(bob)
    r = client.get(f"/submissions/{submission.pk}/status.json")
    assert r.status_code == 200
    assert r.json() == {"id": submission.pk, "status": "submitted", "status_note": "", "failure_message": "",
                        "scores": {}, "ladder": "", "is_terminal": False}
    score(submission)
    data = client.get(f"/submissions/{submission.pk}/status.json").json()
    assert data["status"] == "finished" and data["is_terminal"] is True
    assert list(data["scores"]) == ["short", "medium", "long", "overall"]
    assert set(data["scores"]["overall"]) == {"T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred"}


def test_it_hides_status_from_outsiders(client, alice, eve, submit):
    submission = submit(alice)
    assert client.get(f"/submissions/{submission.pk}/status.json").status_code == 404
    client.force_login(eve)
    assert client.get(f"/submissions/{submission.pk}/status.json").status_code == 404
    assert client.get("/submissions/999999/status.json").status_code == 404
