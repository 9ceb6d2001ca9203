"""API classes for the stock `evalai` CLI (1.3.18): each parses input, calls a service or selector, shapes output.

Two things the CLI decides that the rest of the API would do differently:

- It shows the server's sentence ({"error": ...}) only for 400, 401, 403 and 406; for any other
  status it prints "404 Client Error: ..." and nothing else. So these views send 404 as 406 (as
  EvalAI itself does for "does not exist") and every other 4xx (409 conflict, 413 too large, 429
  quota or throttle) as 400. The body keeps our one error shape.
- `submit --large` (get_submission_file_presigned_url, PUT the parts, finish_submission_file_upload,
  send_submission_message) expects a submission id at the first step. Here nothing exists, and no
  quota is used, until the upload is complete and verified, so the first step answers with an
  *upload handle* instead: the upload's UUID as an integer (uuid4 integers are all >= 2**78, above
  every submission id, so the two never meet). The CLI prints it ("...with the id H..."), and
  `evalai submission H` shows the submission the upload became. finish_submission_file_upload
  completes the upload (that is when the submission is created); send_submission_message reports
  how it went, because the CLI prints that response's error and not finish's.
"""

from __future__ import annotations

import json
import uuid
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import reverse
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.accounts.selectors import team_for
from leaderboard.api_support import SubmitThrottle, error, exception_handler
from leaderboard.challenges.models import Challenge, Phase
from leaderboard.challenges.selectors import challenge_get_by_id, challenge_list, phase_list
from leaderboard.errors import ApplicationError, NotAllowed, NotFound
from leaderboard.submissions.admission import METHOD_NAME_MAX, check_method_fields
from leaderboard.submissions.boards import board_current
from leaderboard.submissions.models import Submission, Upload
from leaderboard.submissions.selectors import (
    board_get,
    submission_access,
    submission_get,
    submission_list,
    upload_get,
    upload_is_owned_by,
)
from leaderboard.submissions.services import submission_create
from leaderboard.submissions.uploads import UPLOAD_LIFETIME, upload_abort, upload_complete, upload_start

from . import selectors
from .serializers import (
    FinishInput,
    LargeStartInput,
    MethodInput,
    challenge_json,
    leaderboard_json,
    page,
    phase_json,
    phase_split_json,
    submission_json,
    submission_result,
)

CLI_SHOWS = {400, 401, 403, 406}  # evalai.utils.config.EVALAI_ERROR_CODES
MAX_ID = 2**63 - 1  # ids are 64-bit; larger numbers name nothing (and would overflow the query)
UPLOAD_HANDLE_MIN = 2**63
RESULT_LINK_SECONDS = 3600
_RESULT_SALT = "egomask.evalai-result"
_TICKET_SALT = "egomask.evalai-upload"
_REFUSED_SECONDS = 3600

SET_TOKEN = ("Copy your token from the API token page of your account on the website and run `evalai set_token "
             "TOKEN` (`evalai set-token TOKEN` with click 7 or later).")
UNSUPPORTED = ("This server supports `evalai challenges`, `evalai challenge C [phases | phase P [splits | submit | "
               "submissions] | leaderboard CPS]` and `evalai submission S [result]`. Teams are made on the website.")


def cli_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The project's error shape, with statuses the CLI prints (see the module docstring)."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.NotAuthenticated):
        response.data["error"] = f"Set your API token first. {SET_TOKEN}"
    elif isinstance(exc, exceptions.AuthenticationFailed):
        response.data["error"] = f"{response.data['error']} It may have been replaced. {SET_TOKEN}"
    if 400 <= response.status_code < 500 and response.status_code not in CLI_SHOWS:
        response.status_code = status.HTTP_406_NOT_ACCEPTABLE if response.status_code == 404 else 400
    return response


class EvalAIApi(APIView):
    schema = None  # EvalAI's API, documented by EvalAI: not part of our OpenAPI schema

    def get_exception_handler(self):  # type: ignore[no-untyped-def]
        return cli_exception_handler


def _id(value: str) -> int:
    number = int(value)
    return number if number <= MAX_ID else 0  # 0 is no object's id


def _challenge(request: Request, challenge_id: str) -> Challenge:
    challenge = challenge_get_by_id(challenge_id=_id(challenge_id), viewer=request.user)
    if challenge is None:
        raise NotFound(f"There is no challenge {challenge_id}; `evalai challenges` lists them.")
    return challenge


def _phase(request: Request, phase_id: str, challenge_id: str | None = None) -> Phase:
    phase = selectors.phase_in_challenge(phase_id=_id(phase_id), viewer=request.user,
                                         challenge_id=None if challenge_id is None else _id(challenge_id))
    if phase is None and challenge_id is None:
        raise NotFound(f"There is no phase {phase_id}.")
    if phase is None:
        raise NotFound(f"There is no phase {phase_id} in challenge {challenge_id}; "
                       f"`evalai challenge {challenge_id} phases` lists them.")
    return phase


def _result_url(request: Request, submission: Submission, full: bool, exact: bool) -> str | None:
    """A signed link to the result, for `evalai submission S result` (which sends no credentials); it carries
    what the caller may see (`full`: diagnostics, `exact`: exact scores)."""
    if not submission.is_terminal:
        return None  # the CLI then says "The Submission is yet to be evaluated."
    signature = signing.TimestampSigner(salt=_RESULT_SALT).sign(f"{submission.pk}:{int(full)}:{int(exact)}")
    path = reverse("evalai-submission-result", kwargs={"submission_id": submission.pk})
    return request.build_absolute_uri(f"{path}?{urlencode({'sig': signature})}")


def _submission_out(request: Request, submission: Submission) -> dict[str, Any]:
    # The submitting team and organizers see timings, the failure reason, problems and warnings.
    access = submission_access(submission=submission, user=request.user)
    full, exact = access.diagnostics, access.exact_scores
    return submission_json(submission, full=full, exact=exact, result_url=_result_url(request, submission, full, exact))


# --- challenges, phases, boards ---------------------------------------------------------------------


class ChallengeListApi(EvalAIApi):
    """GET /api/challenges/challenge/all/all/all (`evalai challenges`)."""

    def get(self, request: Request) -> Response:
        return Response(page([challenge_json(c, request) for c in challenge_list()]))


class ChallengeDetailApi(EvalAIApi):
    """GET /api/challenges/challenge/<C> (`evalai challenge C`)."""

    def get(self, request: Request, challenge_id: str) -> Response:
        return Response(challenge_json(_challenge(request, challenge_id), request))


class PhaseListApi(EvalAIApi):
    """GET /api/challenges/challenge/<C>/challenge_phase (`evalai challenge C phases`)."""

    def get(self, request: Request, challenge_id: str) -> Response:
        challenge = _challenge(request, challenge_id)
        return Response(page([phase_json(p) for p in phase_list(challenge=challenge)]))


class PhaseDetailApi(EvalAIApi):
    """GET /api/challenges/challenge/<C>/challenge_phase/<P> (`evalai challenge C phase P`)."""

    def get(self, request: Request, challenge_id: str, phase_id: str) -> Response:
        return Response(phase_json(_phase(request, phase_id, challenge_id)))


class PhaseSplitListApi(EvalAIApi):
    """GET /api/challenges/<C>/challenge_phase_split (`evalai challenge C phase P splits`): a plain list."""

    def get(self, request: Request, challenge_id: str) -> Response:
        challenge = _challenge(request, challenge_id)
        return Response([phase_split_json(s) for s in selectors.challenge_phase_splits(challenge=challenge)])


class LeaderboardApi(EvalAIApi):
    """GET /api/jobs/challenge_phase_split/<CPS>/leaderboard/ (`evalai challenge C leaderboard CPS`)."""

    def get(self, request: Request, split_id: str) -> Response:
        split = selectors.phase_split_by_id(split_id=_id(split_id), viewer=request.user)
        if split is None:
            raise NotFound(f"There is no leaderboard {split_id}; `evalai challenge C phase P splits` lists them.")
        board_current(phase=split.phase)  # a phase's boards are built on first sight if they never were
        board = board_get(phase=split.phase, split=split.code, viewer=request.user)
        if not board.visible:
            raise NotAllowed(board.message)
        return Response(leaderboard_json(board, split))


# --- submissions ------------------------------------------------------------------------------------


def _base_name(path: str) -> str:
    """The file's name without its folders (the CLI may send a full path, with either slash)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _method_fields(data: dict[str, Any], filename: str) -> dict[str, Any]:
    """Our submission fields from the CLI's: Publication URL is the paper or page, Project URL the code.

    Answering "N" to "include the Submission Details?" (the CLI's default, and what scripts do) sends
    no method name: the file's name without its extension stands in, and the team can change it on
    the submission page or with PATCH /api/v1/submissions/<id>/.
    """
    default = PurePosixPath(_base_name(filename)).stem.strip() or "evalai submission"
    return {"method_name": data["method_name"] or default[:METHOD_NAME_MAX],
            "method_description": data["method_description"], "method_url": data["publication_url"],
            "code_url": data["project_url"], "is_public": data["is_public"]}


class SubmissionsApi(EvalAIApi):
    """GET: the team's submissions to a phase (`... phase P submissions`); POST: submit a file (`... submit`)."""

    permission_classes = [IsAuthenticated]

    def get_throttles(self):  # type: ignore[no-untyped-def]
        return [SubmitThrottle()] if self.request.method == "POST" else []

    def get(self, request: Request, challenge_id: str, phase_id: str) -> Response:
        phase = _phase(request, phase_id, challenge_id)
        team = team_for(user=request.user, challenge=phase.challenge)
        submissions = submission_list(phase=phase, team=team) if team is not None else []
        return Response(page([_submission_out(request, s) for s in submissions]))

    def post(self, request: Request, challenge_id: str, phase_id: str) -> Response:
        phase = _phase(request, phase_id, challenge_id)
        data = MethodInput(data=request.data)
        data.is_valid(raise_exception=True)
        file = request.FILES.get("input_file")
        if file is None:
            raise ApplicationError("Attach the zip as input_file (`--file FILE`).")
        submission = submission_create(phase=phase, user=request.user, file=file,
                                       **_method_fields(data.validated_data, file.name or ""))
        return Response(_submission_out(request, submission), status=status.HTTP_201_CREATED)


class SubmissionDetailApi(EvalAIApi):
    """GET /api/jobs/submission/<S> (`evalai submission S`); S may be an upload handle from `submit --large`."""

    def get(self, request: Request, submission_id: str) -> Response:
        number = int(submission_id)
        if number >= UPLOAD_HANDLE_MIN:
            submission = _submission_of(_own_upload(request, number))
        else:
            submission = submission_get(submission_id=number)
        if submission is None or not submission_access(submission=submission, user=request.user).view:
            raise NotFound(f"There is no submission {submission_id} that you can see; "
                           "`evalai challenge C phase P submissions` lists yours.")
        return Response(_submission_out(request, submission))


class SubmissionResultApi(EvalAIApi):
    """GET the signed link of `submission_result_file`: scores (and, for the team, why it failed) as JSON."""

    authentication_classes: list = []

    def get(self, request: Request, submission_id: str) -> HttpResponse:
        try:
            signed = signing.TimestampSigner(salt=_RESULT_SALT).unsign(request.query_params.get("sig", ""),
                                                                      max_age=RESULT_LINK_SECONDS)
        except signing.BadSignature:
            raise NotAllowed("This result link is not valid or has expired; run `evalai submission S result` "
                             "again.") from None
        number, full, *exact = signed.split(":")
        submission = submission_get(submission_id=int(number)) if number == submission_id else None
        if submission is None:
            raise NotAllowed("This result link is not valid for this submission.")
        # Exact scores if the link was made for someone who may see them, or the Ladder has ended since.
        shows_exact = exact == ["1"] or not submission.phase.ladder_active()
        body = json.dumps(submission_result(submission, full=full == "1", exact=shows_exact), indent=2)
        return HttpResponse(body + "\n", content_type="application/json")


# --- submit --large ---------------------------------------------------------------------------------


def _own_upload(request: Request, handle: int) -> Upload:
    """The caller's upload named by a handle (organizers: anyone's)."""
    upload = None
    if UPLOAD_HANDLE_MIN <= handle < 2**128:
        upload = upload_get(upload_id=uuid.UUID(int=handle))
    if upload is None or not upload_is_owned_by(upload=upload, user=request.user):
        raise NotFound(f"There is no upload {handle} of yours.")
    return upload


def _refused_key(upload: Upload) -> str:
    return f"evalai:upload-refused:{upload.pk}"


def _submission_of(upload: Upload) -> Submission | None:
    """The submission an upload became, or raise what happened to it instead."""
    if upload.status == Upload.Status.COMPLETED:
        return upload.submission and submission_get(submission_id=upload.submission.pk)
    if upload.status == Upload.Status.PENDING:
        raise ApplicationError("This upload has not been completed, so nothing is submitted yet. If `evalai ... "
                               "submit --large` was interrupted, run it again.")
    reason = cache.get(_refused_key(upload))
    raise ApplicationError(f"{reason} Nothing was submitted and no quota was used." if reason else
                           "This upload was stopped or refused, so nothing was submitted and no quota was used; "
                           "run `evalai ... submit --large` again.")


class LargeStartApi(EvalAIApi):
    """POST /api/jobs/phases/<P>/get_submission_file_presigned_url/: open an upload, one URL per part."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [SubmitThrottle]

    def post(self, request: Request, phase_id: str) -> Response:
        phase = _phase(request, phase_id)
        data = LargeStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        filename = _base_name(data.validated_data["file_name"])
        fields = _method_fields(data.validated_data, filename)
        check_method_fields(method_name=fields["method_name"], method_url=fields["method_url"],
                            code_url=fields["code_url"])  # refuse now what completion would refuse
        ticket = upload_start(phase=phase, user=request.user, filename=filename,
                              parts=data.validated_data["num_file_chunks"])
        upload = ticket.upload
        # The method details come back with finish_submission_file_upload as `upload_id`, signed.
        token = signing.dumps({"upload": str(upload.pk), **fields}, salt=_TICKET_SALT, compress=True)
        return Response({
            "presigned_urls": [{"partNumber": t.part_number, "url": request.build_absolute_uri(t.url)}
                               for t in ticket.parts],
            "upload_id": token,
            "submission_pk": upload.pk.int,  # an upload handle: see the module docstring
        }, status=status.HTTP_201_CREATED)


class LargeFinishApi(EvalAIApi):
    """POST /api/jobs/phases/<P>/finish_submission_file_upload/<H>/: complete and verify; the submission is made."""

    permission_classes = [IsAuthenticated]

    def post(self, request: Request, phase_id: str, handle: str) -> Response:
        upload = _own_upload(request, int(handle))
        if upload.phase_id != _id(phase_id):
            raise NotFound(f"There is no upload {handle} of yours in phase {phase_id}.")
        data = FinishInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            fields = signing.loads(data.validated_data["upload_id"], salt=_TICKET_SALT,
                                   max_age=UPLOAD_LIFETIME.total_seconds())
        except signing.BadSignature:
            raise ApplicationError("This upload's upload_id is not valid or has expired; start again.") from None
        if fields.pop("upload", None) != str(upload.pk):
            raise ApplicationError("This upload_id belongs to another upload.")
        try:
            # The CLI announces int(size / part size) + 1 parts: one too many when the size is an exact
            # multiple of its part size, and it sends no size. The sha256/zip checks and the scorer
            # still catch a file that is really short.
            submission = upload_complete(upload=upload, user=request.user, parts=data.validated_data["parts"],
                                         last_part_optional=True, **fields)
        except ApplicationError as exc:
            # The CLI prints send_submission_message's error, not this one: keep the reason for it.
            cache.set(_refused_key(upload), exc.message, _REFUSED_SECONDS)
            raise
        return Response(_submission_out(request, submission))


class LargeSendMessageApi(EvalAIApi):
    """POST /api/jobs/phases/<P>/send_submission_message/<H>/: how the upload ended.

    The CLI calls it after finishing, and also, before finishing, when sending a part failed: then
    the upload is abandoned here (nothing submitted, no quota used) and the CLI stops.
    """

    permission_classes = [IsAuthenticated]

    def post(self, request: Request, phase_id: str, handle: str) -> Response:
        upload = _own_upload(request, int(handle))
        if upload.phase_id != _id(phase_id):
            raise NotFound(f"There is no upload {handle} of yours in phase {phase_id}.")
        if upload.status == Upload.Status.PENDING:
            upload_abort(upload=upload, user=request.user)
            raise ApplicationError("The file did not finish uploading, so nothing was submitted and no quota was "
                                   "used. Run the command again.")
        submission = _submission_of(upload)
        if submission is None:
            raise NotFound(f"The submission of upload {handle} no longer exists.")
        return Response(_submission_out(request, submission))


class UnsupportedApi(EvalAIApi):
    """Any other EvalAI route: say what this server does support, in a status the CLI prints."""

    def _unsupported(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return error(UNSUPPORTED, status.HTTP_406_NOT_ACCEPTABLE)

    get = post = put = patch = delete = _unsupported
