"""The submission as organizers read it in the admin: scores with two decimals, a summary (scores per split,
status history, timings, the failure as the team reads it), and its files streamed from private storage to
the challenge's hosts only."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from leaderboard.challenges.models import Challenge, Host
from leaderboard.submissions.models import Score, Submission

from .conftest import make_user


@pytest.fixture
def hosts(challenge):
    hector, vera, olga = make_user("hector"), make_user("vera"), make_user("olga")
    Host.objects.create(challenge=challenge, user=hector, role=Host.Role.ORGANIZER)
    Host.objects.create(challenge=challenge, user=vera, role=Host.Role.VIEWER)
    Host.objects.create(challenge=Challenge.objects.create(slug="other", title="Other"), user=olga,
                        role=Host.Role.ORGANIZER)
    return {"host": hector, "viewer": vera, "other_host": olga}


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_it_shows_scores_with_two_decimals(client, hosts, alice, submit, score):
    submission = score(submit(alice))
    overall = Score.objects.get(submission=submission, split="overall")
    Score.objects.filter(pk=overall.pk).update(IoU_gold_pred=12.345678901234, T_recall=99.999)
    client.force_login(hosts["viewer"])
    listing = text(client.get("/admin/submissions/submission/"))
    assert ">12.35<" in listing and "12.3456" not in listing
    page = text(client.get(f"/admin/submissions/submission/{submission.pk}/change/"))
    assert "12.35" in page and "100.00" in page
    assert "12.345678901234" not in page and "Score object" not in page
    overall.refresh_from_db()
    assert str(overall).startswith("overall: T_recall 100.00, IoU_all ")


def test_the_change_page_reads_as_a_summary(client, hosts, alice, submit, score, organizer):
    finished = score(submit(alice))
    client.force_login(hosts["host"])
    page = text(client.get(f"/admin/submissions/submission/{finished.pk}/change/"))
    for split in ("short", "medium", "long", "overall"):
        assert f'<th scope="row">{split}</th>' in page
    history = page[page.index("Status history"):page.index("Moderate")]
    # submitted (the upload), validating and scoring (the worker's claims), finished (its save)
    assert [s for s in ("submitted", "validating", "scoring", "finished") if f"<td>{s}</td>" in history] == [
        "submitted", "validating", "scoring", "finished"]
    assert "scored by worker" in history
    assert "scoring took" in page and "started" in page
    assert f'href="/admin/submissions/submission/{finished.pk}/download/upload.zip"' in page
    assert f'action="/admin/submissions/submission/{finished.pk}/moderate/hide/"' in page

    failed = score(submit(alice, data=b"PK\x03\x04 not really a zip"))
    assert failed.status == Submission.Status.FAILED
    page = text(client.get(f"/admin/submissions/submission/{failed.pk}/change/"))
    assert "Failure, as the team reads it" in page
    assert failed.failure_message.split(":")[0] in page
    assert "<td>failed</td>" in page


def test_a_viewer_reads_the_page_without_the_buttons(client, hosts, alice, submit, score):
    submission = score(submit(alice))
    client.force_login(hosts["viewer"])
    page = text(client.get(f"/admin/submissions/submission/{submission.pk}/change/"))
    assert "Status history" in page and "/moderate/" not in page


def test_downloads_stream_the_stored_bytes_to_the_hosts_only(client, hosts, alice, carol, submit, score,
                                                            prediction_zip):
    data = prediction_zip("noisy")
    submission = score(submit(alice, data=data))
    upload = f"/admin/submissions/submission/{submission.pk}/download/upload.zip"
    details = f"/admin/submissions/submission/{submission.pk}/download/per-expression.csv"
    for who in (hosts["host"], hosts["viewer"]):
        client.force_login(who)
        response = client.get(upload)
        assert response.status_code == 200 and response.streaming
        assert b"".join(response.streaming_content) == data
        assert response["Content-Type"] == "application/zip"
        assert response["Content-Disposition"] == f'attachment; filename="submission-{submission.pk}.zip"'
        csv = client.get(details)
        assert csv["Content-Type"].startswith("text/csv")
        body = b"".join(csv.streaming_content).decode()
        assert body.splitlines()[0].startswith("split,") and len(body.splitlines()) > 1
        assert zipfile.ZipFile(io.BytesIO(data)).namelist()  # what was served is the team's zip, whole
    for who in (hosts["other_host"], alice, carol):
        client.force_login(who)
        for url in (upload, details):
            response = client.get(url)
            assert response.status_code in (404, 302)
            if response.status_code == 302:  # a participant: to the admin's login, never to a file
                assert response["Location"].startswith("/admin/login/")
    client.force_login(hosts["other_host"])
    assert client.get(upload).status_code == 404


def test_a_submission_without_results_has_no_csv(client, hosts, alice, submit):
    queued = submit(alice)
    client.force_login(hosts["host"])
    assert client.get(f"/admin/submissions/submission/{queued.pk}/download/per-expression.csv").status_code == 404
    assert client.get(f"/admin/submissions/submission/{queued.pk}/download/upload.zip").status_code == 200


def test_the_index_is_branded_and_grouped(client, hosts, alice):
    client.force_login(hosts["host"])
    page = text(client.get("/admin/"))
    assert "Ego<span>Mask</span> · organizers" in page and 'href="/">Back to the site</a>' in page
    sections = re.findall(r'class="section"[^>]*>([^<]+)</a>', page)
    assert sections[:2] == ["Run a challenge", "Submissions and moderation"]
    assert 'href="/admin/audit/' in page
