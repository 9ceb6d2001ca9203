from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("leaderboard.api_v1")),
    path("api/", include("leaderboard.evalai.urls")),
    path("", include("leaderboard.ops.urls")),
    path("", include("leaderboard.accounts.urls")),
    path("", include("leaderboard.notifications.urls")),
    path("", include("leaderboard.challenges.urls")),
    path("", include("leaderboard.submissions.urls")),
    path("", include("leaderboard.baselines.urls")),
]
