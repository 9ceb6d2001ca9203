"""The routes and JSON shapes of the stock evalai CLI (1.3.18), through Django's test client.

Literal URLs, so the CLI's contract is frozen here. Every route answers with and without its
trailing slash; errors are {"error": ...} in a status the CLI prints (400, 401, 403, 406).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from leaderboard.challenges.models import Challenge, Phase
from leaderboard.challenges.services import phase_create
from leaderboard.submissions.models import Submission, Upload
from scoring import METRICS

from .apiclient import client_for

CLI_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")  # evalai.utils.common.validate_date_format


def cli_date(value: str) -> dt.datetime:
    for fmt in CLI_DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    raise AssertionError(f"the CLI cannot parse {value!r}")


def api(user=None) -> Client:
    """A client that sends `Authorization: Bearer <token>`, as the CLI does."""
    if user is None:
        return Client()
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")


def both(url: str) -> list[str]:
    return [url.rstrip("/"), url.rstrip("/") + "/"]


def assert_error(response, status: int, text: str = "") -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert text in body["error"]
    return body


def post_submission(client: Client, phase: Phase, data: bytes, **fields):
    form = {"status": "submitting", "submission_metadata": "[]", "method_name": "My method", **fields}
    form = {k: v for k, v in form.items() if v is not None}
    upload = io.BytesIO(data)
    upload.name = "predictions.zip"
    return client.post(f"/api/jobs/challenge/{phase.challenge_id}/challenge_phase/{phase.pk}/submission/",
                       {**form, "input_file": upload})


# --- challenges, phases, splits ---------------------------------------------------------------------


def test_it_lists_challenges_in_evalais_envelope(alice, phase):
    Challenge.objects.create(slug="hidden", title="Hidden", is_published=False)
    for url in both("/api/challenges/challenge/all/all/all/"):
        body = api(alice).get(url).json()
        assert (body["count"], body["next"], body["previous"]) == (1, None, None)
        (item,) = body["results"]
        assert item["id"] == phase.challenge_id and item["title"] == "EgoMask"
        assert item["short_description"] == "Test challenge"
        assert item["creator"]["team_name"]
        assert item["published"] and item["approved_by_admin"] and item["is_active"]
        cli_date(item["start_date"])
        assert cli_date(item["end_date"]).year == 9999  # an open-ended phase: the CLI still needs a date


def test_it_shows_one_challenge_and_spans_its_phases(alice, phase, challenge):
    start, end = timezone.now() - dt.timedelta(days=3), timezone.now() + dt.timedelta(days=30)
    Phase.objects.filter(pk=phase.pk).update(starts_at=start, ends_at=end)
    for url in both(f"/api/challenges/challenge/{challenge.pk}/"):
        body = api(alice).get(url).json()
        assert body["id"] == challenge.pk and body["description"] == "Test challenge"
        assert abs(cli_date(body["start_date"]) - start) < dt.timedelta(seconds=1)
        assert abs(cli_date(body["end_date"]) - end) < dt.timedelta(seconds=1)
        for field in ("submission_guidelines", "evaluation_details", "terms_and_conditions"):
            assert isinstance(body[field], str)  # the CLI cleans each with BeautifulSoup


def test_it_answers_missing_and_unpublished_challenges_with_406(alice, organizer, challenge):
    body = assert_error(api(alice).get("/api/challenges/challenge/999999"), 406, "no challenge 999999")
    assert body["detail"] == {}
    assert_error(api(alice).get("/api/challenges/challenge/99999999999999999999999/"), 406)  # past 64 bits
    Challenge.objects.filter(pk=challenge.pk).update(is_published=False)
    assert_error(api(alice).get(f"/api/challenges/challenge/{challenge.pk}"), 406)
    assert api(organizer).get(f"/api/challenges/challenge/{challenge.pk}").status_code == 200


def test_it_lists_phases_and_shows_one(alice, phase, challenge):
    Phase.objects.filter(pk=phase.pk).update(max_per_day=3, max_total=10)
    for url in both(f"/api/challenges/challenge/{challenge.pk}/challenge_phase/"):
        body = api(alice).get(url).json()
        assert body["count"] == 1 and body["results"][0]["id"] == phase.pk
    for url in both(f"/api/challenges/challenge/{challenge.pk}/challenge_phase/{phase.pk}/"):
        body = api(alice).get(url).json()
        assert {k: body[k] for k in ("id", "name", "challenge", "codename", "max_submissions_per_day",
                                     "max_submissions", "leaderboard_public", "is_active", "is_public")} == {
            "id": phase.pk, "name": "Test phase", "challenge": challenge.pk, "codename": "test",
            "max_submissions_per_day": 3, "max_submissions": 10, "leaderboard_public": True, "is_active": True,
            "is_public": True}
        assert body["submission_meta_attributes"] is None  # the CLI asks no metadata questions
        assert body["primary_metric"] == phase.primary_metric
        cli_date(body["start_date"]), cli_date(body["end_date"])


def test_it_answers_a_phase_of_another_challenge_with_406(alice, phase):
    other = Challenge.objects.create(slug="other", title="Other")
    assert_error(api(alice).get(f"/api/challenges/challenge/{other.pk}/challenge_phase/{phase.pk}"), 406,
                 f"no phase {phase.pk} in challenge {other.pk}")


def test_it_lists_the_boards_as_a_plain_list_public_ones_with_visibility_3(alice, phase, challenge):
    private = phase_create(challenge=challenge, slug="final", name="Final", order=1,
                           visibility=Phase.Visibility.PRIVATE)
    for url in both(f"/api/challenges/{challenge.pk}/challenge_phase_split/"):
        body = api(alice).get(url).json()
        assert isinstance(body, list) and len(body) == 8
        assert [(s["challenge_phase"], s["dataset_split_name"], s["visibility"]) for s in body] == [
            *[(phase.pk, code, 3) for code in ("short", "medium", "long", "overall")],
            *[(private.pk, code, 1) for code in ("short", "medium", "long", "overall")],
        ]
        assert body[0]["id"] == phase.splits.get(code="short").pk
        assert body[0]["challenge_phase_name"] == "Test phase"


# --- submitting a file ------------------------------------------------------------------------------


def test_it_accepts_a_file_as_the_cli_sends_it(alice, phase, prediction_zip):
    response = post_submission(api(alice), phase, prediction_zip("good"), method_name="Mine",
                               method_description="d", publication_url="https://example.org/paper",
                               project_url="https://example.org/code", is_public="false")
    assert response.status_code == 201, response.content
    body = response.json()
    submission = Submission.objects.get()
    assert body["id"] == submission.pk and body["status"] == "submitted"
    assert (submission.method_name, submission.method_url, submission.code_url, submission.is_public) == (
        "Mine", "https://example.org/paper", "https://example.org/code", False)
    assert body["participant_team_name"] == "Team A" and body["submission_result_file"] is None
    cli_date(body["submitted_at"])


def test_it_submits_without_a_trailing_slash_and_defaults_to_public(alice, phase, prediction_zip):
    upload = io.BytesIO(prediction_zip("good"))
    upload.name = "p.zip"
    response = api(alice).post(f"/api/jobs/challenge/{phase.challenge_id}/challenge_phase/{phase.pk}/submission",
                               {"status": "submitting", "method_name": "Mine", "input_file": upload})
    assert response.status_code == 201, response.content
    assert Submission.objects.get().is_public


@pytest.mark.parametrize("fields", [{"method_name": None}, {"method_name": "  "}])
def test_it_names_a_submission_sent_without_details_after_its_file(alice, phase, prediction_zip, fields):
    # `submit --file F` answered "N" to "include the Submission Details?" sends no method name.
    response = post_submission(api(alice), phase, prediction_zip("good"), **fields)
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert submission.method_name == "predictions" == response.json()["method_name"]
    # The team gives the real name later (the website's edit form does the same).
    r = client_for(alice).patch(f"/api/v1/submissions/{submission.pk}/", {"method_name": "Real name"}, format="json")
    assert r.status_code == 200 and r.json()["method_name"] == "Real name"


@pytest.mark.parametrize(("who", "fields", "status", "text"), [
    ("eve", {}, 403, "Create or join a team"),
    ("alice", {"publication_url": "ftp://x"}, 400, "http:// or https://"),
])
def test_it_refuses_a_submission_with_our_sentence(request, phase, prediction_zip, who, fields, status, text):
    user = request.getfixturevalue(who)
    assert_error(post_submission(api(user), phase, prediction_zip("good"), **fields), status, text)
    assert not Submission.objects.exists()


def test_it_sends_quota_and_conflict_statuses_as_400_so_the_cli_prints_them(alice, phase, prediction_zip):
    Phase.objects.filter(pk=phase.pk).update(max_per_day=1)
    assert post_submission(api(alice), phase, prediction_zip("good")).status_code == 201
    body = assert_error(post_submission(api(alice), phase, prediction_zip("good")), 400, "daily quota")
    assert body["detail"]["quota"] == "daily"


def test_it_refuses_a_non_zip_and_a_missing_file(alice, phase):
    assert_error(post_submission(api(alice), phase, b"not a zip at all"), 400, "not a zip")
    response = api(alice).post(f"/api/jobs/challenge/{phase.challenge_id}/challenge_phase/{phase.pk}/submission/",
                               {"method_name": "x"})
    assert_error(response, 400, "input_file")


def test_it_asks_for_a_token_and_rejects_a_bad_one(phase, prediction_zip):
    url = f"/api/jobs/challenge/{phase.challenge_id}/challenge_phase/{phase.pk}/submission/"
    assert_error(Client().get(url), 401, "evalai set_token")
    assert_error(Client(HTTP_AUTHORIZATION="Bearer nope").get(url), 401, "evalai set_token")
    assert_error(Client(HTTP_AUTHORIZATION="Bearer nope").get("/api/challenges/challenge/all/all/all"), 401)


def test_it_lists_the_teams_submissions(alice, bob, carol, eve, phase, submit):
    mine = submit(alice)
    teammates = submit(bob)
    submit(carol)
    for url in both(f"/api/jobs/challenge/{phase.challenge_id}/challenge_phase/{phase.pk}/submission/"):
        body = api(alice).get(url).json()
        assert [s["id"] for s in body["results"]] == [teammates.pk, mine.pk]
        assert {"participant_team_name", "execution_time", "status", "submitted_at", "method_name"} <= set(
            body["results"][0])
        assert api(eve).get(url).json()["results"] == []


# --- one submission ---------------------------------------------------------------------------------


def test_it_shows_a_scored_submission_to_its_team_with_a_result_link(alice, bob, phase, submit, score):
    submission = score(submit(alice, "perfect"))
    for url in both(f"/api/jobs/submission/{submission.pk}/"):
        body = api(bob).get(url).json()
        assert (body["id"], body["status"], body["participant_team_name"]) == (submission.pk, "finished", "Team A")
        assert body["execution_time"] == pytest.approx(submission.scoring_seconds)
        assert set(body["scores"]) == {"short", "medium", "long", "overall"}
        assert set(body["scores"]["overall"]) == set(METRICS)
        assert body["failure_message"] == "" and body["warnings"] == submission.warnings
    link = urlsplit(api(alice).get(f"/api/jobs/submission/{submission.pk}").json()["submission_result_file"])
    result = Client().get(f"{link.path}?{link.query}")  # no credentials: the CLI sends none for this link
    assert result.status_code == 200
    data = json.loads(result.content)
    assert data["status"] == "finished" and data["scores"]["overall"] == body["scores"]["overall"]
    assert_error(Client().get(f"{link.path}?sig=forged"), 403, "not valid")
    other = f"/api/jobs/submission/{submission.pk + 1}/result?{link.query}"
    assert_error(Client().get(other), 403)


def test_it_tells_the_team_why_a_submission_failed(alice, phase, submit, score):
    Phase.objects.filter(pk=phase.pk).update(ground_truth=None)
    submission = score(submit(alice))
    body = api(alice).get(f"/api/jobs/submission/{submission.pk}").json()
    assert body["status"] == "failed" and "no usable ground truth" in body["failure_message"]
    link = urlsplit(body["submission_result_file"])
    assert "no usable ground truth" in json.loads(Client().get(f"{link.path}?{link.query}").content)["failure_message"]


def test_it_serves_a_board_in_evalais_shape(alice, carol, organizer, phase, submit, score):
    score(submit(alice, "perfect", method_name="Oracle"))
    score(submit(carol, "noisy", method_name="Noisy"))
    score(submit(organizer, "good", method_name="Baseline model", is_baseline=True))
    split = phase.splits.get(code="overall")
    for url in both(f"/api/jobs/challenge_phase_split/{split.pk}/leaderboard/"):
        body = api(carol).get(url).json()
        assert body["count"] == 3 and body["metric"] == phase.primary_metric
        rows = body["results"]
        assert [r["submission__participant_team__team_name"] for r in rows] == ["Team A", "Baseline: Baseline model",
                                                                                    "Team C"]
        assert [r["rank"] for r in rows] == [1, None, 2]
        assert rows[0]["leaderboard__schema"]["labels"] == list(METRICS)
        assert rows[0]["result"] == [round(rows[0]["scores"][m], 2) for m in METRICS]
        assert rows[0]["result"][METRICS.index(phase.primary_metric)] == 100.0
        assert rows[1]["submission__is_baseline"] and rows[0]["challenge_phase_split"] == split.pk
        cli_date(rows[0]["submission__submitted_at"])
    assert Client().get(f"/api/jobs/challenge_phase_split/{split.pk}/leaderboard").status_code == 200


def test_it_keeps_a_private_board_private(alice, organizer, challenge, submit, score):
    private = phase_create(challenge=challenge, slug="final", name="Final", visibility=Phase.Visibility.PRIVATE,
                           reveal_at=timezone.now() + dt.timedelta(days=2), ground_truth=challenge.ground_truths.get())
    score(submit(alice, "perfect", phase=private))
    url = f"/api/jobs/challenge_phase_split/{private.splits.get(code='overall').pk}/leaderboard/"
    assert_error(api(alice).get(url), 403, "private until")
    assert [r["submission__participant_team__team_name"] for r in api(organizer).get(url).json()["results"]] == [
        "Team A"]


def test_it_answers_a_missing_board_with_406(alice):
    assert_error(api(alice).get("/api/jobs/challenge_phase_split/999999/leaderboard/"), 406, "no leaderboard")


# --- submit --large, through this server (no S3) ----------------------------------------------------


def large_start(client: Client, phase: Phase, chunks: int = 1, **fields):
    data = {"status": "submitting", "file_name": "/home/me/preds.zip", "num_file_chunks": chunks,
            "method_name": "Large", **fields}
    return client.post(f"/api/jobs/phases/{phase.pk}/get_submission_file_presigned_url/",
                       {k: v for k, v in data.items() if v is not None})


def put_parts(body: dict, data: bytes) -> list[dict]:
    """PUT the chunks to the absolute part URLs without credentials, as the CLI does."""
    urls = body["presigned_urls"]
    size = -(-len(data) // len(urls))
    parts = []
    for index, target in enumerate(urls):
        url = urlsplit(target["url"])
        assert url.scheme == "http" and url.netloc == "testserver"  # absolute, on this server
        response = Client().put(f"{url.path}?{url.query}", data=data[index * size:(index + 1) * size],
                                content_type="application/octet-stream")
        assert response.status_code == 200
        parts.append({"ETag": response["ETag"], "PartNumber": target["partNumber"]})
    return parts


def finish(client: Client, phase: Phase, body: dict, parts: list[dict], slash: str = "/"):
    return client.post(f"/api/jobs/phases/{phase.pk}/finish_submission_file_upload/{body['submission_pk']}{slash}",
                       {"parts": json.dumps(parts), "upload_id": body["upload_id"]})


def send_message(client: Client, phase: Phase, body: dict, slash: str = "/"):
    return client.post(f"/api/jobs/phases/{phase.pk}/send_submission_message/{body['submission_pk']}{slash}")


@pytest.mark.parametrize("slash", ["/", ""])
def test_it_takes_a_large_file_in_parts_and_makes_the_submission_only_at_the_end(alice, phase, prediction_zip,
                                                                                 slash):
    data = prediction_zip("good")
    response = large_start(api(alice), phase, chunks=3, method_name="Big", is_public="false")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [u["partNumber"] for u in body["presigned_urls"]] == [1, 2, 3]
    handle = body["submission_pk"]
    assert isinstance(handle, int) and handle >= 2**63  # an upload handle, above every submission id
    upload = Upload.objects.get()
    assert uuid.UUID(int=handle) == upload.pk and upload.filename == "preds.zip"

    parts = put_parts(body, data)
    assert not Submission.objects.exists()  # nothing made, no quota used, until the upload is complete
    response = finish(api(alice), phase, body, parts, slash)
    assert response.status_code == 200, response.content
    submission = Submission.objects.get()
    assert response.json()["id"] == submission.pk
    assert (submission.method_name, submission.is_public, submission.file_size) == ("Big", False, len(data))
    response = send_message(api(alice), phase, body, slash)
    assert response.status_code == 200 and response.json()["id"] == submission.pk

    shown = api(alice).get(f"/api/jobs/submission/{handle}{slash}").json()  # `evalai submission <handle>`
    assert shown["id"] == submission.pk and shown["status"] == "submitted"


def test_it_explains_a_refused_large_upload_at_every_later_step(alice, phase):
    body = large_start(api(alice), phase).json()
    parts = put_parts(body, b"this is no zip")
    assert_error(finish(api(alice), phase, body, parts), 400, "not a zip")
    # The CLI prints send_submission_message's error, not finish's: it must say the same.
    assert_error(send_message(api(alice), phase, body), 400, "not a zip")
    assert_error(api(alice).get(f"/api/jobs/submission/{body['submission_pk']}"), 400, "not a zip")
    assert not Submission.objects.exists() and Upload.objects.get().status == Upload.Status.ABORTED


def test_it_abandons_an_upload_whose_parts_did_not_all_arrive(alice, phase):
    body = large_start(api(alice), phase, chunks=2).json()
    assert_error(api(alice).get(f"/api/jobs/submission/{body['submission_pk']}"), 400, "not been completed")
    # When a part fails, the CLI calls send_submission_message before finishing.
    assert_error(send_message(api(alice), phase, body), 400, "did not finish uploading")
    assert Upload.objects.get().status == Upload.Status.ABORTED and not Submission.objects.exists()


def test_it_checks_team_quota_and_method_before_any_byte_is_sent(alice, eve, phase, submit):
    assert_error(large_start(api(eve), phase), 403, "Create or join a team")
    assert_error(large_start(api(alice), phase, project_url="nope"), 400, "code URL")
    assert_error(large_start(api(alice), phase, chunks=0), 400, "number of parts")
    Phase.objects.filter(pk=phase.pk).update(max_total=1)
    submit(alice)
    assert_error(large_start(api(alice), phase), 400, "total quota")
    assert not Upload.objects.exists()


def test_it_keeps_uploads_to_their_owner_phase_and_ticket(alice, bob, phase, challenge, prediction_zip):
    body = large_start(api(alice), phase).json()
    parts = put_parts(body, prediction_zip("good"))
    assert_error(finish(api(bob), phase, body, parts), 406, "no upload")
    assert_error(api(bob).get(f"/api/jobs/submission/{body['submission_pk']}"), 406)
    other = phase_create(challenge=challenge, slug="other", name="Other")
    response = api(alice).post(f"/api/jobs/phases/{other.pk}/finish_submission_file_upload/{body['submission_pk']}/",
                               {"parts": json.dumps(parts), "upload_id": body["upload_id"]})
    assert_error(response, 406)
    forged = {**body, "upload_id": body["upload_id"][:-2] + "xx"}
    assert_error(finish(api(alice), phase, forged, parts), 400, "not valid")
    assert_error(finish(api(alice), phase, body, [{"PartNumber": "one"}]), 400, "PartNumber")
    done = finish(api(alice), phase, body, parts)
    assert done.status_code == 200
    # Finishing it again (the CLI's answer was lost) answers the same submission, not a second one.
    again = finish(api(alice), phase, body, parts)
    assert (again.status_code, again.json()) == (200, done.json())
    assert Submission.objects.count() == 1


def test_it_answers_unknown_handles_and_huge_numbers_with_406(alice, phase):
    assert_error(api(alice).get(f"/api/jobs/submission/{uuid.uuid4().int}"), 406)
    assert_error(api(alice).get(f"/api/jobs/submission/{2**130}"), 406)
    assert_error(api(alice).post(f"/api/jobs/phases/{phase.pk}/send_submission_message/{uuid.uuid4().int}/"), 406)
    assert_error(Client().post(f"/api/jobs/phases/{phase.pk}/send_submission_message/{uuid.uuid4().int}/"), 401)


def test_it_answers_evalai_routes_it_does_not_serve_with_a_sentence(alice):
    for url in ("/api/participants/participant_team", "/api/challenges/challenge/past/approved/public",
                "/api/hosts/challenge_host_team/"):
        assert_error(api(alice).get(url), 406, "Teams are made on the website")


def test_it_names_a_large_upload_sent_without_details_after_its_file(alice, phase, prediction_zip):
    body = large_start(api(alice), phase, method_name=None).json()  # file_name "/home/me/preds.zip"
    response = finish(api(alice), phase, body, put_parts(body, prediction_zip("good")))
    assert response.status_code == 200, response.content
    assert Submission.objects.get().method_name == "preds"
