"""API classes for submissions and uploads: each parses input, calls a service or selector, shapes output."""

from __future__ import annotations

from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .uploads import upload_receive_part


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
