"""Routes of the API under /api/v1/ (each app's api.py holds the classes)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path

from .accounts import api as accounts
from .ops import api as ops
from .submissions import api as submissions
from .submissions import api_diagnostics as diagnostics
from .submissions import api_compare as compare
from .submissions import api_phases as challenges
from .submissions.api_exports import export_view
from .submissions.api_snapshots import PhaseSnapshotsApi
from .submissions import api_uploads as uploads


def schema_endpoints(endpoints: list[tuple]) -> list[tuple]:
    """drf-spectacular preprocessing hook: /api/schema/ documents this API only (the evalai-compatible
    routes under /api/ mirror another service's API and are described by that service)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]


def endpoint_not_found(request: HttpRequest, rest: str) -> JsonResponse:
    """Unknown addresses answer in the API's error shape too, not with the web site's 404 page."""
    hint = "" if request.path.endswith("/") else " API addresses end with a slash."
    return JsonResponse({"error": f"There is no API endpoint at {request.path}.{hint} See /api/docs/.",
                         "detail": {}}, status=404)


urlpatterns = [
    path("auth/token/", accounts.TokenApi.as_view(), name="api-token"),
    path("teams/", accounts.TeamListApi.as_view(), name="api-teams"),
    path("teams/<int:team_id>/", accounts.TeamDetailApi.as_view(), name="api-team"),
    path("challenges/", challenges.ChallengeListApi.as_view(), name="api-challenges"),
    path("challenges/<int:challenge_id>/", challenges.ChallengeDetailApi.as_view(), name="api-challenge"),
    path("challenges/<int:challenge_id>/status/", ops.ChallengeStatusApi.as_view(), name="api-challenge-status"),
    path("phases/<int:phase_id>/", challenges.PhaseDetailApi.as_view(), name="api-phase"),
    path("phases/<int:phase_id>/submissions/", submissions.PhaseSubmissionsApi.as_view(),
         name="api-phase-submissions"),
    path("phases/<int:phase_id>/leaderboard/", submissions.LeaderboardApi.as_view(), name="api-leaderboard"),
    path("phases/<int:phase_id>/leaderboard/by-trait/", compare.LeaderboardByTraitApi.as_view(),
         name="api-leaderboard-by-trait"),
    path("phases/<int:phase_id>/compare/", compare.CompareApi.as_view(), name="api-compare"),
    path("phases/<int:phase_id>/leaderboard.csv", submissions.LeaderboardCsvApi.as_view(),
         name="api-leaderboard-csv"),
    path("phases/<int:phase_id>/snapshots/", PhaseSnapshotsApi.as_view(), name="api-phase-snapshots"),
    # A phase's exports, for its organizers (api_exports.py).
    path("phases/<int:phase_id>/export/submissions.csv", export_view("submissions.csv"),
         name="api-export-submissions-csv"),
    path("phases/<int:phase_id>/export/submissions.json", export_view("submissions.json"),
         name="api-export-submissions-json"),
    path("phases/<int:phase_id>/export/boards.csv", export_view("boards.csv"), name="api-export-boards-csv"),
    path("phases/<int:phase_id>/export/boards.json", export_view("boards.json"), name="api-export-boards-json"),
    path("phases/<int:phase_id>/export/results.zip", export_view("results.zip"), name="api-export-results-zip"),
    path("phases/<int:phase_id>/uploads/", uploads.UploadStartApi.as_view(), name="api-upload-start"),
    path("submissions/<int:submission_id>/", submissions.SubmissionDetailApi.as_view(), name="api-submission"),
    path("submissions/<int:submission_id>/receipt/", submissions.SubmissionReceiptApi.as_view(),
         name="api-submission-receipt"),
    path("submissions/<int:submission_id>/cancel/", submissions.SubmissionCancelApi.as_view(),
         name="api-submission-cancel"),
    path("submissions/<int:submission_id>/diagnostics/", diagnostics.SubmissionDiagnosticsApi.as_view(),
         name="api-submission-diagnostics"),
    path("submissions/<int:submission_id>/timelines/", diagnostics.SubmissionTimelinesApi.as_view(),
         name="api-submission-timelines"),
    path("uploads/<uuid:upload_id>/complete/", uploads.UploadCompleteApi.as_view(), name="api-upload-complete"),
    path("uploads/<uuid:upload_id>/abort/", uploads.UploadAbortApi.as_view(), name="api-upload-abort"),
    path("uploads/<uuid:upload_id>/parts/<int:part_number>/", uploads.UploadPartApi.as_view(),
         name="api-upload-part"),
    re_path(r"^(?P<rest>.*)$", endpoint_not_found),
]
