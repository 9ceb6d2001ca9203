"""Reads of the operations app: live workers per queue, and a challenge's public queue status.

The status is counts only (nothing per team, nothing private), from three small queries whatever the
number of submissions: active submissions by phase and status (the status index), the durations of the
last day's scorings, and the heartbeat rows.
"""

from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F
from django.utils import timezone

from leaderboard.challenges.models import Challenge
from leaderboard.submissions.models import Submission

from .models import WorkerHeartbeat

Status = Submission.Status
SCORING_QUEUE = "scoring"
MEDIAN_WINDOW = datetime.timedelta(hours=24)


def live_workers(*, now: datetime.datetime | None = None) -> list[WorkerHeartbeat]:
    """The workers whose heartbeat is fresh (seen within WORKER_HEARTBEAT_STALE_AFTER seconds)."""
    since = (now or timezone.now()) - datetime.timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_AFTER)
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=since).order_by("hostname"))


def queue_consumers(*, workers: list[WorkerHeartbeat]) -> dict[str, list[WorkerHeartbeat]]:
    """Queue name -> the workers among `workers` that consume it."""
    found: dict[str, list[WorkerHeartbeat]] = defaultdict(list)
    for worker in workers:
        for queue in worker.queues:
            found[queue].append(worker)
    return dict(found)


@dataclass(frozen=True)
class PhaseQueueStatus:
    slug: str
    name: str
    waiting: int  # submitted, not yet taken by a worker
    running: int  # being validated or scored
    scored_last_day: int
    median_seconds: float | None  # started -> finished, over the last day; None without any
    estimated_wait_seconds: float | None  # None: no worker, or no scoring to estimate from


@dataclass(frozen=True)
class ChallengeQueueStatus:
    generated_at: datetime.datetime
    phases: list[PhaseQueueStatus]
    queue_ahead: int  # active submissions of every challenge: they share the scoring workers
    scoring_workers: int
    scoring_slots: int  # tasks the live scoring workers run at once
    median_seconds: float | None  # over every phase, the last day
    note: str  # why there is no estimate, in words ("" when there is one)

    def as_dict(self) -> dict[str, object]:
        """The JSON form (the page's `status.json` and the API answer the same)."""
        return {
            "generated_at": self.generated_at.isoformat(), "queue_ahead": self.queue_ahead,
            "scoring_workers": self.scoring_workers, "scoring_slots": self.scoring_slots,
            "median_seconds": _rounded(self.median_seconds), "note": self.note,
            "estimate_method": ESTIMATE_METHOD,
            "phases": [{"slug": p.slug, "name": p.name, "waiting": p.waiting, "running": p.running,
                        "scored_last_day": p.scored_last_day, "median_seconds": _rounded(p.median_seconds),
                        "estimated_wait_seconds": _rounded(p.estimated_wait_seconds)} for p in self.phases],
        }


ESTIMATE_METHOD = ("an estimate: the submissions ahead (every challenge's, waiting or running) times the median "
                   "scoring time of the last 24 h, divided by the tasks the live scoring workers run at once, plus "
                   "the phase's own median scoring time")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def challenge_queue_status(*, challenge: Challenge, now: datetime.datetime | None = None) -> ChallengeQueueStatus:
    """The public queue figures of `challenge`'s phases (the caller decided the viewer may see the challenge)."""
    now = now or timezone.now()
    phases = list(challenge.phases.order_by("order", "id").values("id", "slug", "name"))
    active: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (Submission.objects.filter(status__in=Submission.ACTIVE).order_by()
                .values("phase_id", "status").annotate(n=Count("id"))):
        active[row["phase_id"]][row["status"]] += row["n"]
    durations: dict[int, list[float]] = defaultdict(list)
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    for phase_id, duration in (Submission.objects.filter(status=Status.FINISHED, finished_at__gte=now - MEDIAN_WINDOW,
                                                         started_at__isnull=False)
                               .order_by().annotate(took=took).values_list("phase_id", "took")):
        durations[phase_id].append(max(duration.total_seconds(), 0.0))
    everything = [seconds for values in durations.values() for seconds in values]
    median_all = statistics.median(everything) if everything else None
    scoring = queue_consumers(workers=live_workers(now=now)).get(SCORING_QUEUE, [])
    slots = sum(max(worker.concurrency, 1) for worker in scoring)
    ahead = sum(sum(counts.values()) for counts in active.values())
    if not scoring:
        note = "No scoring worker is running: new submissions wait until one starts."
    elif median_all is None:
        note = "No submission was scored in the last 24 hours, so there is nothing to estimate the wait from."
    else:
        note = ""

    rows = []
    for phase in phases:
        counts, own = active.get(phase["id"], {}), durations.get(phase["id"], [])
        median = statistics.median(own) if own else None
        wait = None if note else ahead * median_all / slots + (median if median is not None else median_all)
        rows.append(PhaseQueueStatus(
            slug=phase["slug"], name=phase["name"], waiting=counts.get(Status.SUBMITTED, 0),
            running=counts.get(Status.VALIDATING, 0) + counts.get(Status.SCORING, 0), scored_last_day=len(own),
            median_seconds=median, estimated_wait_seconds=wait))
    return ChallengeQueueStatus(generated_at=now, phases=rows, queue_ahead=ahead, scoring_workers=len(scoring),
                                scoring_slots=slots, median_seconds=median_all, note=note)
