from django.apps import AppConfig


class BaselinesConfig(AppConfig):
    name = "leaderboard.baselines"
    label = "baselines"
    verbose_name = "Baselines"

    def ready(self) -> None:
        from django.conf import settings

        from leaderboard.submissions.signals import submission_ended

        from .dispatch import prepare_result_folder
        from .receivers import follow_baseline_scoring

        # The runner chord's file result backend (embedded mode) needs its folder before a worker starts.
        prepare_result_folder(settings)
        # A run is finished when its submission is: the scoring code is the submissions app's, and
        # knows nothing of runs.
        submission_ended.connect(follow_baseline_scoring, dispatch_uid="baselines-follow-scoring")
