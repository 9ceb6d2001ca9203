"""Routes of the stock `evalai` CLI (1.3.18) under /api/, each with or without its trailing slash."""

from django.urls import URLPattern, re_path

from . import views

C = r"(?P<challenge_id>[0-9]+)"
P = r"(?P<phase_id>[0-9]+)"
S = r"(?P<submission_id>[0-9]{1,40})"
H = r"(?P<handle>[0-9]{1,40})"
CPS = r"(?P<split_id>[0-9]+)"


def _route(pattern: str, view: type[views.EvalAIApi], name: str) -> URLPattern:
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    _route("challenges/challenge/all/all/all", views.ChallengeListApi, "evalai-challenges"),
    _route(f"challenges/challenge/{C}", views.ChallengeDetailApi, "evalai-challenge"),
    _route(f"challenges/challenge/{C}/challenge_phase", views.PhaseListApi, "evalai-phases"),
    _route(f"challenges/challenge/{C}/challenge_phase/{P}", views.PhaseDetailApi, "evalai-phase"),
    _route(f"challenges/{C}/challenge_phase_split", views.PhaseSplitListApi, "evalai-splits"),
    _route(f"jobs/challenge/{C}/challenge_phase/{P}/submission", views.SubmissionsApi, "evalai-submissions"),
    _route(f"jobs/submission/{S}", views.SubmissionDetailApi, "evalai-submission"),
    _route(f"jobs/submission/{S}/result", views.SubmissionResultApi, "evalai-submission-result"),
    _route(f"jobs/challenge_phase_split/{CPS}/leaderboard", views.LeaderboardApi, "evalai-leaderboard"),
    _route(f"jobs/phases/{P}/get_submission_file_presigned_url", views.LargeStartApi, "evalai-large-start"),
    _route(f"jobs/phases/{P}/finish_submission_file_upload/{H}", views.LargeFinishApi, "evalai-large-finish"),
    _route(f"jobs/phases/{P}/send_submission_message/{H}", views.LargeSendMessageApi, "evalai-large-message"),
    # The rest of EvalAI's API (teams, hosts, docker pushes, past/future lists): a sentence, not an HTML 404.
    re_path(r"^(?:auth|accounts|challenges|participants|hosts|jobs)/", views.UnsupportedApi.as_view(),
            name="evalai-unsupported"),
]
