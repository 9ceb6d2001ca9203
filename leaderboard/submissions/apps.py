from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "leaderboard.submissions"
    label = "submissions"

    def ready(self) -> None:
        from .boards import connect_receivers

        # The boards follow the saves and deletes of what they show (phases, teams, reported rows).
        connect_receivers()
