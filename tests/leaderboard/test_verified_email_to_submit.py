"""A participant's first submission needs a verified e-mail address, on every way in; accounts that
submitted before the rule keep submitting."""

from __future__ import annotations

import io

import pytest
from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import SimpleUploadedFile

from leaderboard.accounts.services import team_create
from leaderboard.errors import NotAllowed
from leaderboard.submissions import services as submission_services
from leaderboard.submissions.models import Submission

from .apiclient import assert_error, client_for
from .conftest import make_user


@pytest.fixture
def dave(challenge):
    """Signed up, in a team, the address not yet confirmed."""
    user = make_user("dave", verified=False)
    team_create(challenge=challenge, user=user, name="Team D")
    return user


def test_it_refuses_a_first_submission_until_the_address_is_verified(dave, phase, submit):
    with pytest.raises(NotAllowed, match="Verify your e-mail address before your first submission") as refused:
        submit(dave)
    assert refused.value.detail["verify_url"].endswith("/account/email/")
    assert not Submission.objects.filter(user=dave).exists()
    EmailAddress.objects.filter(user=dave).update(verified=True)
    assert submit(dave).status == Submission.Status.SUBMITTED


def test_it_answers_the_api_with_the_page_to_verify_on(dave, phase, prediction_zip):
    r = client_for(dave).post(f"/api/v1/phases/{phase.pk}/submissions/", {
        "file": SimpleUploadedFile("p.zip", prediction_zip(), content_type="application/zip"), "method_name": "M"})
    body = assert_error(r, 403)
    assert "/account/email/" in body["error"]  # the CLI prints the sentence
    assert body["detail"]["verify_url"].endswith("/account/email/")


def test_it_says_so_on_the_submit_page_with_a_link(client, dave, phase):
    client.force_login(dave)
    page = client.get(f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/submit/").content.decode()
    assert "Verify your e-mail address before your first submission" in page
    assert 'href="/account/email/"' in page
    assert "disabled" in page


def test_it_lets_an_account_with_earlier_submissions_go_on(dave, phase, prediction_zip, settings):
    settings.SUBMIT_REQUIRES_VERIFIED_EMAIL = False
    submission_services.submission_create(phase=phase, user=dave, file=io.BytesIO(prediction_zip()),
                                          method_name="Before the rule")
    settings.SUBMIT_REQUIRES_VERIFIED_EMAIL = True
    again = submission_services.submission_create(phase=phase, user=dave, file=io.BytesIO(prediction_zip()),
                                                  method_name="After the rule")
    assert again.status == Submission.Status.SUBMITTED
