import datetime as dt
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from leaderboard.submissions.models import Submission

URL = "/challenges/egomask/phases/test/submit/"
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


@pytest.fixture
def fields(prediction_zip):
    """Factory: a complete form, with the file as given."""

    def make(content: bytes | None = None, **overrides):
        data = {"file": SimpleUploadedFile("preds.zip", prediction_zip("good") if content is None else content,
                                           content_type="application/zip"),
                "method_name": "SAM-X", "method_description": "A method.", "method_url": "https://example.org/p",
                "code_url": "https://example.org/c", "is_public": "on"}
        data.update(overrides)
        return data

    return make


def test_it_shows_the_form(client, alice, phase):
    client.force_login(alice)
    r = client.get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'enctype="multipart/form-data"' in html and "data-upload" in html
    assert "<progress" in html
    assert 'id="id_is_public" checked' in html


def test_it_needs_login(client, phase):
    r = client.get(URL)
    assert r.status_code == 302
    assert r.url == "/login/?next=" + URL


def test_it_accepts_a_submission(client, alice, phase, fields):
    client.force_login(alice)
    r = client.post(URL, fields())
    submission = Submission.objects.get()
    assert r.status_code == 302
    assert r.url == f"/submissions/{submission.pk}/"
    assert submission.status == Submission.Status.SUBMITTED
    assert submission.team == alice.memberships.get().team
    assert (submission.method_name, submission.method_url, submission.is_public) == ("SAM-X", "https://example.org/p",
                                                                                      True)
    assert b"received" in client.get(r.url).content


def test_it_keeps_a_submission_off_the_public_board_when_asked(client, alice, phase, fields):
    client.force_login(alice)
    data = fields()
    del data["is_public"]
    client.post(URL, data)
    assert Submission.objects.get().is_public is False


def test_it_refuses_without_a_team(client, eve, phase, fields):
    client.force_login(eve)
    r = client.post(URL, fields())
    assert r.status_code == 403
    assert b"Create or join a team for this challenge before submitting." in r.content
    assert not Submission.objects.exists()


def test_it_refuses_a_file_that_is_not_a_zip(client, alice, phase, fields):
    client.force_login(alice)
    r = client.post(URL, fields(b"just some text", method_name="Kept name"))
    assert r.status_code == 400
    assert b"This is not a zip file." in r.content
    assert b'value="Kept name"' in r.content  # the fields are kept
    assert not Submission.objects.exists()


def test_it_refuses_when_the_phase_is_closed(client, alice, phase, fields):
    phase.ends_at = timezone.now() - dt.timedelta(hours=1)
    phase.save()
    client.force_login(alice)
    r = client.post(URL, fields())
    assert r.status_code == 403
    assert b"closed at" in r.content
    assert not Submission.objects.exists()


def test_it_refuses_over_quota(client, alice, phase, fields, submit):
    phase.max_per_day = 1
    phase.save()
    submit(alice)
    client.force_login(alice)
    r = client.post(URL, fields())
    assert r.status_code == 429
    assert b"daily quota" in r.content


def test_it_explains_a_missing_file(client, alice, phase, fields):
    client.force_login(alice)
    data = fields()
    del data["file"]
    r = client.post(URL, data)
    assert r.status_code == 400
    assert b"This field is required." in r.content


def test_it_answers_json_to_xhr(client, alice, phase, fields):
    client.force_login(alice)
    r = client.post(URL, fields(), **XHR)
    submission = Submission.objects.get()
    assert r.status_code == 200
    assert r.json() == {"redirect": f"/submissions/{submission.pk}/"}


def test_it_answers_json_errors_to_xhr(client, alice, eve, phase, fields):
    client.force_login(alice)
    r = client.post(URL, fields(b"not a zip"), **XHR)
    assert r.status_code == 400
    assert r.json()["error"].startswith("This is not a zip file.")
    r = client.post(URL, fields(method_url="not a url"), **XHR)
    assert r.status_code == 400
    assert r.json()["error"] == "Method URL: Enter a valid URL."
    client.force_login(eve)
    r = client.post(URL, fields(), **XHR)
    assert r.status_code == 403
    assert r.json()["error"] == "Create or join a team for this challenge before submitting."


def test_it_refuses_an_empty_zip_naming_the_file(client, alice, phase, fields):
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    client.force_login(alice)
    r = client.post(URL, fields(buffer.getvalue()), **XHR)
    assert r.status_code == 400
    assert r.json()["error"].startswith("The zip file 'preds.zip' is empty: it has no files in it.")
    assert not Submission.objects.exists()


def _disabled_with(html: str, reason: str) -> bool:
    """The form's fields are disabled and the page says why, once."""
    return ('<fieldset class="plain" disabled aria-describedby="submit-blocked">' in html
            and html.count(reason) == 1)


def test_it_disables_the_form_without_a_team_and_says_why(client, eve, phase, fields):
    client.force_login(eve)
    assert _disabled_with(client.get(URL).content.decode(), "Create or join a team for this challenge")
    r = client.post(URL, fields())  # the server refuses it all the same
    assert r.status_code == 403 and _disabled_with(r.content.decode(), "Create or join a team for this challenge")


def test_it_disables_the_form_before_the_phase_opens_and_says_when(client, alice, phase):
    phase.starts_at = timezone.now() + dt.timedelta(days=2)
    phase.save()
    client.force_login(alice)
    assert _disabled_with(client.get(URL).content.decode(), f"opens at {phase.starts_at:%Y-%m-%d %H:%M} UTC")


def test_it_disables_the_form_after_the_phase_closed_and_says_when(client, alice, phase):
    phase.ends_at = timezone.now() - dt.timedelta(hours=3)
    phase.save()
    client.force_login(alice)
    assert _disabled_with(client.get(URL).content.decode(), f"closed at {phase.ends_at:%Y-%m-%d %H:%M} UTC")


def test_it_disables_the_form_when_the_quota_is_used_and_says_when_it_resets(client, alice, phase, submit):
    phase.max_per_day = 1
    phase.save()
    submit(alice)
    client.force_login(alice)
    midnight = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%d 00:00")
    assert _disabled_with(client.get(URL).content.decode(), f"It resets at {midnight} UTC.")


def test_it_enables_the_form_when_the_team_can_submit(client, alice, phase):
    client.force_login(alice)
    html = client.get(URL).content.decode()
    assert '<fieldset class="plain">' in html and "submit-blocked" not in html
