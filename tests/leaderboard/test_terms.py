"""A phase that requires the challenge's terms takes a submission only from a submitter who accepted the
current text: refused with the terms' URL on every way in, admitted once accepted, refused again when the
text changes."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leaderboard.challenges.models import Challenge, Phase, TermsAcceptance
from leaderboard.challenges.terms import terms_accept, terms_accepted, terms_sha256
from leaderboard.errors import Conflict, NotAllowed
from leaderboard.submissions.models import Submission

from .apiclient import assert_error, client_for

TERMS_URL = "/challenges/egomask/terms/"


@pytest.fixture
def with_terms(challenge, phase):
    Challenge.objects.filter(pk=challenge.pk).update(terms="You will **not** train on the test set.")
    Phase.objects.filter(pk=phase.pk).update(requires_terms=True)
    challenge.refresh_from_db()
    phase.refresh_from_db()
    return phase


def accept(user, challenge):  # type: ignore[no-untyped-def]
    return terms_accept(user=user, challenge=challenge, terms_sha256_seen=terms_sha256(challenge=challenge))


def test_it_refuses_a_submission_until_the_submitter_accepts_and_admits_it_after(alice, with_terms, submit):
    with pytest.raises(NotAllowed, match="accepted the terms of EgoMask") as refused:
        submit(alice)
    assert refused.value.detail["terms_url"].endswith(TERMS_URL)
    accept(alice, with_terms.challenge)
    assert submit(alice).status == Submission.Status.SUBMITTED


def test_it_asks_each_submitter_not_the_team(alice, bob, with_terms, submit):
    accept(alice, with_terms.challenge)
    with pytest.raises(NotAllowed):
        submit(bob)  # alice's teammate has not accepted


def test_it_asks_again_when_the_terms_change(alice, with_terms, submit):
    accept(alice, with_terms.challenge)
    Challenge.objects.filter(pk=with_terms.challenge_id).update(terms="New terms: cite the paper.")
    with_terms.challenge.refresh_from_db()
    assert not terms_accepted(user=alice, phase=with_terms)
    with pytest.raises(NotAllowed, match="again: they changed since you accepted them"):
        submit(alice)
    accept(alice, with_terms.challenge)
    assert TermsAcceptance.objects.filter(user=alice).count() == 2  # the record of both texts
    assert submit(alice).status == Submission.Status.SUBMITTED


def test_it_does_not_count_line_endings_as_a_change(challenge):
    challenge.terms = "One.\n\nTwo."
    before = terms_sha256(challenge=challenge)
    challenge.terms = "One.\r\n\r\nTwo.\n"
    assert terms_sha256(challenge=challenge) == before


def test_it_refuses_an_acceptance_of_a_text_that_changed_meanwhile(alice, with_terms):
    with pytest.raises(Conflict, match="The terms changed while you were reading them"):
        terms_accept(user=alice, challenge=with_terms.challenge, terms_sha256_seen="0" * 64)
    assert not TermsAcceptance.objects.exists()


def test_a_phase_without_the_requirement_takes_submissions(alice, challenge, phase, submit):
    Challenge.objects.filter(pk=challenge.pk).update(terms="Some terms.")
    phase.challenge.refresh_from_db()
    assert submit(alice).status == Submission.Status.SUBMITTED


def test_the_api_answers_with_the_terms_url(alice, with_terms, prediction_zip):
    r = client_for(alice).post(f"/api/v1/phases/{with_terms.pk}/submissions/", {
        "file": SimpleUploadedFile("p.zip", prediction_zip(), content_type="application/zip"), "method_name": "M"})
    body = assert_error(r, 403)
    assert body["detail"]["terms_url"].endswith(TERMS_URL)
    assert TERMS_URL in body["error"]
    # The phase's own answer says it too, before anything is uploaded (the egomask CLI prints it and stops).
    phase = client_for(alice).get(f"/api/v1/phases/{with_terms.pk}/").json()
    assert phase["refusal"] == body["error"]
    assert client_for().get(f"/api/v1/phases/{with_terms.pk}/").json()["refusal"] == ""  # nobody signed in


def test_the_evalai_route_says_where_to_accept(alice, with_terms, prediction_zip):
    r = client_for(alice).post(
        f"/api/jobs/challenge/{with_terms.challenge_id}/challenge_phase/{with_terms.pk}/submission/",
        {"input_file": SimpleUploadedFile("p.zip", prediction_zip(), content_type="application/zip"),
         "method_name": "M"})
    assert r.status_code == 403  # one of the statuses the stock evalai CLI prints
    assert TERMS_URL in r.json()["error"]
    assert not Submission.objects.exists()


def test_the_submit_page_links_to_the_terms(client, alice, with_terms, settings):
    client.force_login(alice)
    page = client.get("/challenges/egomask/phases/test/submit/").content.decode()
    assert "accepted the terms of EgoMask" in page
    assert f'href="{settings.SITE_URL}{TERMS_URL}"' in page


def test_the_terms_page_shows_the_text_takes_the_acceptance_and_its_date(client, alice, with_terms):
    page = client.get(TERMS_URL).content.decode()
    assert "<strong>not</strong>" in page and "Log in" in page  # anonymous: read, no form
    client.force_login(alice)
    page = client.get(TERMS_URL).content.decode()
    assert 'name="accept"' in page
    r = client.post(TERMS_URL, {"terms_sha256": terms_sha256(challenge=with_terms.challenge)})
    assert r.status_code == 400 and "Tick" in r.content.decode()  # the box left unticked
    r = client.post(TERMS_URL, {"accept": "yes", "terms_sha256": terms_sha256(challenge=with_terms.challenge),
                                "next": "/challenges/egomask/phases/test/submit/"})
    assert (r.status_code, r.url) == (302, "/challenges/egomask/phases/test/submit/")
    acceptance = TermsAcceptance.objects.get(user=alice)
    page = client.get(TERMS_URL).content.decode()
    assert f"You accepted these terms on {acceptance.accepted_at:%Y-%m-%d %H:%M} UTC" in page
    assert 'name="accept"' not in page
