
import pytest

from leaderboard.submissions.models import Submission


def _url(submission) -> str:
    return f"/submissions/{submission.pk}/"


@pytest.fixture
def finished(alice, submit, score):
    submission = score(submit(alice, quality="noisy", method_name="Noisy net"))
    assert submission.status == Submission.Status.FINISHED
    return submission


def test_it_shows_the_team_everything(client, alice, bob, finished):
    client.force_login(bob)
    r = client.get(_url(finished))
    assert r.status_code == 200
    html = r.content.decode()
    assert "Noisy net" in html
    assert "status-finished" in html
    assert "6.37" in html  # overall IoU_gold_pred
    assert '<th scope="row">medium</th>' in html
    assert finished.scorer_version in html
    assert "Scoring took" in html
    assert "Hide from the public board" in html
    assert "Cancel submission" not in html  # finished


def test_it_shows_warnings_to_the_team(client, alice, finished):
    Submission.objects.filter(pk=finished.pk).update(
        warnings=[{"code": "unknown_video", "message": "video x is not in the benchmark", "location": {"video": "x"}}])
    client.force_login(alice)
    html = client.get(_url(finished)).content.decode()
    assert "unknown_video" in html and "video x is not in the benchmark" in html


def test_it_renders_the_per_video_results_from_the_stored_details(client, alice, organizer, finished, phase):
    # Who sees them: test_submission_access.py. What they show: the videos of the stored results.
    client.force_login(organizer)
    r = client.get(_url(finished))
    assert b"Per-video results" in r.content
    assert b"<code>short_000</code>" in r.content
    phase.show_expression_details = True
    phase.save()
    client.force_login(alice)
    assert b"<code>short_000</code>" in client.get(_url(finished)).content


def test_it_shows_the_failure_and_its_problems(client, alice, submit):
    submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(
        status="failed", failure_message="Your submission could not be scored: bad RLE.",
        problems=[{"code": "bad_rle", "message": "counts do not sum",
                   "location": {"split": "short", "frame": "00005"}}])
    client.force_login(alice)
    html = client.get(_url(submission)).content.decode()
    assert "Your submission could not be scored: bad RLE." in html
    assert "bad_rle" in html and "counts do not sum" in html and "frame 00005" in html


def test_it_cancels_an_active_submission(client, alice, bob, submit):
    submission = submit(alice)
    client.force_login(bob)
    r = client.post(f"/submissions/{submission.pk}/cancel/", follow=True)
    assert r.redirect_chain[-1][0] == _url(submission)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CANCELLED
    assert b"cancelled" in r.content
    r = client.post(f"/submissions/{submission.pk}/cancel/", follow=True)
    assert b"This submission is already cancelled." in r.content


def test_it_does_not_let_outsiders_cancel(client, alice, eve, submit, finished):
    submission = submit(alice)
    client.force_login(eve)
    assert client.post(f"/submissions/{submission.pk}/cancel/").status_code == 404
    r = client.post(f"/submissions/{finished.pk}/cancel/", follow=True)  # visible, but not theirs
    assert b"Only the submitting team or the challenge&#x27;s organizers can cancel this submission." in r.content
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SUBMITTED
    assert client.get(f"/submissions/{submission.pk}/cancel/").status_code == 405


def test_it_toggles_public(client, alice, carol, finished):
    client.force_login(alice)
    r = client.post(f"/submissions/{finished.pk}/public/", {"is_public": "0"}, follow=True)
    finished.refresh_from_db()
    assert finished.is_public is False
    assert b"kept off the public leaderboard" in r.content
    client.post(f"/submissions/{finished.pk}/public/", {"is_public": "1"})
    finished.refresh_from_db()
    assert finished.is_public is True
    client.force_login(carol)
    r = client.post(f"/submissions/{finished.pk}/public/", {"is_public": "0"}, follow=True)
    assert b"Only the submitting team can change this." in r.content
    finished.refresh_from_db()
    assert finished.is_public is True


def test_it_answers_404_for_a_missing_submission(client, db):
    assert client.get("/submissions/424242/").status_code == 404


def test_it_lets_the_team_edit_the_method_details(client, alice, bob, carol, finished):
    client.force_login(bob)
    html = client.get(_url(finished)).content.decode()
    assert "Edit the method details" in html and 'value="Noisy net"' in html
    r = client.post(f"/submissions/{finished.pk}/method/", {"method_name": "Sharper net", "method_description": "",
                                                            "method_url": "", "code_url": "example.org/code"},
                    follow=True)
    finished.refresh_from_db()
    assert (finished.method_name, finished.code_url) == ("Sharper net", "https://example.org/code")
    assert b"method details are saved" in r.content
    r = client.post(f"/submissions/{finished.pk}/method/", {"method_name": ""}, follow=True)
    assert b"Method name: This field is required." in r.content
    client.force_login(carol)
    r = client.post(f"/submissions/{finished.pk}/method/", {"method_name": "Taken over"}, follow=True)
    assert b"Only the submitting team can change the method&#x27;s details." in r.content
    finished.refresh_from_db()
    assert finished.method_name == "Sharper net"


def test_it_says_a_failed_submission_is_on_no_board_and_offers_no_toggle(client, alice, submit):
    submission = submit(alice)
    Submission.objects.filter(pk=submission.pk).update(status="failed", failure_message="Your submission could "
                                                       "not be scored: x (and 2 more problems).",
                                                       problems=[{"code": "a", "message": "m", "location": {}}] * 3)
    client.force_login(alice)
    html = client.get(_url(submission)).content.decode()
    assert "not on any board: it failed" in html
    assert "shown on the public board" not in html and "the public board</button>" not in html
    assert html.count('<li><code>a</code> m') == 3  # the problems the message counts are listed
    r = client.post(f"/submissions/{submission.pk}/public/", {"is_public": "0"}, follow=True)
    assert b"A failed submission is on no leaderboard" in r.content
