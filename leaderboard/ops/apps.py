from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "leaderboard.ops"
    label = "ops"
    verbose_name = "Operations"
