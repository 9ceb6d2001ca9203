"""API classes for large uploads in parts: start, PUT a part (without S3), complete, abort. Each parses
input, calls an uploads service, shapes output."""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import parsers, serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard.api_support import SubmitThrottle, error_responses, phase_or_404
from leaderboard.errors import NotFound

from . import admission, selectors
from .api import MethodFields, SubmissionOutput, submission_response
from .models import Upload
from .uploads import upload_abort, upload_complete, upload_receive_part, upload_start

SHA256 = r"^[0-9a-fA-F]{64}$"


class UploadPartETagInput(serializers.Serializer):
    PartNumber = serializers.IntegerField(min_value=1)
    ETag = serializers.CharField(max_length=200)


def _upload_or_404(request: Request, upload_id: uuid.UUID) -> Upload:
    """The caller's upload (organizers: anyone's); another's is answered as missing, so its existence does not leak."""
    upload = selectors.upload_get(upload_id=upload_id)
    if upload is None or not selectors.upload_is_owned_by(upload=upload, user=request.user):
        raise NotFound("No such upload; start one with POST /api/v1/phases/<id>/uploads/.")
    return upload


class UploadPartTargetOutput(serializers.Serializer):
    part_number = serializers.IntegerField()
    url = serializers.CharField(help_text="PUT the part's bytes here; the answer's ETag header names it")


class UploadTicketOutput(serializers.Serializer):
    id = serializers.UUIDField()
    parts = UploadPartTargetOutput(many=True)
    direct_to_s3 = serializers.BooleanField()
    expires_at = serializers.DateTimeField(help_text="an upload not completed by then is deleted")
    complete_url = serializers.CharField()
    abort_url = serializers.CharField()


class UploadStartApi(APIView):
    """Open an upload of a large file in `parts` parts. Send each part with an HTTP PUT of its bytes to its
    URL (straight to S3 when the server uses S3; no credentials needed, the URL carries them), then POST
    to `complete_url`. Team, dates, quota and size are checked now, but quota is only used on completion;
    an upload never completed creates nothing and is cleaned up after `expires_at`."""

    class UploadStartInput(serializers.Serializer):
        filename = serializers.CharField(max_length=255, allow_blank=True, default="")
        size = serializers.IntegerField(help_text="bytes; completion checks the file has exactly this size")
        parts = serializers.IntegerField(default=1, help_text="each part but the last at least 5 MiB with S3")
        sha256 = serializers.RegexField(SHA256, required=False, help_text="optional here; required on complete")
        method_name = serializers.CharField(max_length=200, required=False,
                                            help_text="optional here: checked early, sent again on complete")
        method_url = serializers.CharField(allow_blank=True, required=False)
        code_url = serializers.CharField(allow_blank=True, required=False)
        method_description = serializers.CharField(allow_blank=True, required=False)
        is_baseline = serializers.BooleanField(default=False, help_text="organizers only: a baseline entry")

    permission_classes = [IsAuthenticated]
    throttle_classes = [SubmitThrottle]

    @extend_schema(tags=["uploads"], operation_id="uploads_start", request=UploadStartInput,
                   responses={201: UploadTicketOutput, **error_responses(400, 401, 403, 404, 413, 429)})
    def post(self, request: Request, phase_id: int) -> Response:
        phase = phase_or_404(request, phase_id)
        data = self.UploadStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if "method_name" in fields:  # refuse a bad name or URL before gigabytes are sent
            admission.check_method_fields(method_name=fields["method_name"], method_url=fields.get("method_url", ""),
                                         code_url=fields.get("code_url", ""))
        ticket = upload_start(phase=phase, user=request.user, filename=fields["filename"], size=fields["size"],
                              parts=fields["parts"], is_baseline=fields["is_baseline"])
        upload = ticket.upload
        return Response(UploadTicketOutput({
            "id": upload.pk,
            "parts": [{"part_number": t.part_number,
                       "url": t.url if ticket.direct_to_s3 else request.build_absolute_uri(t.url)}
                      for t in ticket.parts],
            "direct_to_s3": ticket.direct_to_s3,
            "expires_at": upload.expires_at,
            "complete_url": request.build_absolute_uri(reverse("api-upload-complete", args=[upload.pk])),
            "abort_url": request.build_absolute_uri(reverse("api-upload-abort", args=[upload.pk])),
        }).data, status=201)


class UploadCompleteApi(APIView):
    """Finish an upload: the server assembles the parts, checks the file (it exists, has the announced
    size and the sha256 sent here, is a zip) and creates the submission; this is when quota is used.
    A file that fails a check is discarded: start again."""

    class UploadCompleteInput(MethodFields):
        sha256 = serializers.RegexField(SHA256, help_text="of the whole file, hex")
        is_public = serializers.BooleanField(default=True, help_text="show it on the public leaderboard")
        parts = UploadPartETagInput(many=True, required=False,
                                    help_text="each part's ETag as its PUT answered; optional (the server can "
                                    "find the parts itself)")

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["uploads"], operation_id="uploads_complete", request=UploadCompleteInput,
                   responses={201: SubmissionOutput, 200: SubmissionOutput,
                              **error_responses(400, 401, 403, 404, 409, 413, 429)})
    def post(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = _upload_or_404(request, upload_id)
        data = self.UploadCompleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        submission = upload_complete(upload=upload, user=request.user, **data.validated_data)
        return submission_response(request, submission, 201)


class UploadAbortApi(APIView):
    """Give up an upload: its parts are deleted and nothing is created."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["uploads"], operation_id="uploads_abort", request=None,
                   responses={204: OpenApiResponse(description="Aborted; nothing is left on the server."),
                              **error_responses(401, 404, 409)})
    def post(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload_abort(upload=_upload_or_404(request, upload_id), user=request.user)
        return Response(status=204)


class _RawBody(parsers.BaseParser):
    """Hands the request body over as a stream (parts can be large: never read into memory)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return stream


class UploadPartApi(APIView):
    """PUT one part of an upload to this server (used when private storage is not S3).

    The URL carries its own signature, like an S3 presigned URL, so no credentials are needed; the
    answer has the part's ETag header, as S3's does.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [_RawBody]

    @extend_schema(parameters=[OpenApiParameter("sig", str, required=True)], request=None, responses={200: None})
    def put(self, request: HttpRequest, upload_id: str, part_number: int) -> Response:
        etag = upload_receive_part(upload_id=upload_id, part_number=part_number,
                                   signature=request.query_params.get("sig", ""), stream=request._request)
        return Response(status=200, headers={"ETag": etag})
