from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("leaderboard.api_v1")),
    path("api/", include("leaderboard.evalai.urls")),
    path("", include("leaderboard.accounts.urls")),
    path("", include("leaderboard.challenges.urls")),
    path("", include("leaderboard.submissions.urls")),
]
