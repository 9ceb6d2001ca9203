from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "leaderboard.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from leaderboard.submissions.signals import submission_ended

        from .receivers import mail_submitter

        # A submission's mail follows its end: the scoring code knows nothing of mail.
        submission_ended.connect(mail_submitter, dispatch_uid="notifications-mail-submitter")
