from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="leaderboard.challenges.tasks.check_ground_truth", acks_late=True)
def check_ground_truth(bundle_id: int) -> None:
    services.ground_truth_check(bundle_id=bundle_id)
