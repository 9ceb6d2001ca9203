"""A phase's exports for its organizers under /api/v1/phases/<id>/export/ (exports.py makes them): token or
session authentication, streamed as they are made. To anyone else the phase does not exist (404)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from leaderboard.api_support import error_responses, phase_or_404
from leaderboard.challenges.permissions import Can

from .exports import EXPORTS, phase_export

_DESCRIPTIONS = {
    "submissions.csv": "Every submission of the phase, one line each: metadata (id, team, submitter, method "
    "fields, status, failure, attempt, flags, sha256, size, times, versions) and the four metrics and the "
    "expression count per split as `<split>.<metric>` columns, with every stored digit.",
    "submissions.json": "The same as submissions.csv, as {challenge, phase, exported_at, submissions: [...]} "
    "with the scores nested per split.",
    "boards.csv": "Every board of the phase as the organizers see it (a private one before its reveal too): "
    "split, position, rank, team, method, is_baseline, is_reported, the metrics.",
    "boards.json": "The same as boards.csv, as {challenge, phase, metric, boards: [{split, public, rows}]}.",
    "results.zip": "The per-expression results of every finished submission, one CSV each "
    "(`<id>-<team>-<method>.csv`), and manifest.csv listing them.",
}


class PhaseExportApi(APIView):
    """One export of a phase (`export`, set per route), for the challenge's organizers only."""

    permission_classes = [IsAuthenticated]
    export = ""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        return super().perform_content_negotiation(request, force=True)  # errors are JSON whatever is accepted

    def get(self, request: Request, phase_id: int) -> StreamingHttpResponse:
        phase = phase_or_404(request, phase_id, needs=Can.VIEW)
        export = phase_export(phase=phase, name=self.export, by=request.user)
        response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        response["Cache-Control"] = "private, no-store"  # another team's data: no shared cache keeps it
        return response


def export_view(name: str):  # type: ignore[no-untyped-def]
    """The view of one export, documented in the API's schema."""
    assert name in EXPORTS, name
    media = "application/zip" if name.endswith(".zip") else ("text/csv" if name.endswith(".csv")
                                                             else "application/json")
    def get(self: PhaseExportApi, request: Request, phase_id: int) -> StreamingHttpResponse:
        return PhaseExportApi.get(self, request, phase_id)

    # A function of its own per export: extend_schema marks the function it is given.
    decorated = extend_schema(
        tags=["exports"], operation_id=f"phase_export_{name.replace('.', '_')}", description=_DESCRIPTIONS[name],
        responses={(200, media): OpenApiResponse(OpenApiTypes.BINARY, description="the file, streamed"),
                   **error_responses(401, 404)})(get)
    view_class = type(f"PhaseExport{name.replace('.', ' ').title().replace(' ', '')}Api", (PhaseExportApi,),
                      {"get": decorated, "export": name, "__doc__": _DESCRIPTIONS[name]})
    return view_class.as_view()
