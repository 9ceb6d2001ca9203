from django.contrib.admin.apps import AdminConfig
from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    """The project itself, as an app only so that its start-up step runs in every process."""

    name = "leaderboard"
    label = "leaderboard_project"

    def ready(self) -> None:
        from django.conf import settings

        from .startup import prepare_local_folders

        prepare_local_folders(settings)


class OrganizerAdminConfig(AdminConfig):
    """Django's admin, with our site in the place of the stock one (`admin.site` is an OrganizerAdminSite)."""

    default_site = "leaderboard.adminsite.OrganizerAdminSite"
