"""The organizer dashboard of a challenge (reads): submissions per day, failures grouped by reason, stuck and
slow submissions, and the teams with their quota use, per phase and for the whole challenge.

A fixed number of aggregate queries, whatever the number of teams and submissions (a test counts them):
counts are grouped in the database; the few things SQL cannot say portably (a message's pattern, a median, a
95th percentile) are computed while one query's rows stream past, keeping only the groups and the flagged
submissions.

Rules:
- a day is a calendar day in the challenge's time zone; a phase's chart covers its span (start to end, or to
  today) when that is at most MAX_DAYS long, else the last DAYS days of it; the challenge's, the last DAYS days;
- a failure's reason is its kind and its message with numbers and quoted names replaced (failure_pattern), so
  "Frame 12 of video 'v3'..." and "Frame 7 of video 'v9'..." are one reason;
- stuck: an active submission whose worker's lease ran out, one claimed without a lease for longer than
  SCORING_STUCK_AFTER, or one not yet claimed by a worker for longer than DASHBOARD_STUCK_FACTOR times the
  median wait of the challenge's recent submissions (and at least DASHBOARD_STUCK_WAIT_SECONDS);
- slow: a finished submission whose scoring took longer than its phase's 95th percentile (a phase with at
  least P95_MIN scored submissions) or than DASHBOARD_SLOW_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from leaderboard.accounts.models import Membership, Team
from leaderboard.challenges.models import Challenge, Phase

from .models import Submission
from .selectors import day_start

DAYS = 30
MAX_DAYS = 120
P95_MIN = 20
WAIT_SAMPLE = 200  # recent submissions whose wait for a worker makes the median
SHOWN = 20  # stuck or slow submissions listed per phase (all are counted)
Status = Submission.Status


# --- failure reasons ------------------------------------------------------------------------------------------

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")


def failure_pattern(message: str) -> str:
    """A failure message with what varies between submissions replaced: quoted names by '…', numbers by N."""
    text = _QUOTED.sub("'…'", message)
    text = _NUMBER.sub("N", text)
    return _SPACE.sub(" ", text).strip()[:300] or "(no message)"


@dataclass
class FailureGroup:
    kind: str
    pattern: str
    count: int = 0
    latest_id: int = 0
    latest_message: str = ""
    latest_at: dt.datetime | None = None
    phases: set[int] = field(default_factory=set)

    def add(self, submission_id: int, phase_id: int, message: str, at: dt.datetime) -> None:
        self.count += 1
        self.phases.add(phase_id)
        if self.latest_at is None or (at, submission_id) > (self.latest_at, self.latest_id):
            self.latest_id, self.latest_message, self.latest_at = submission_id, message, at


# --- flagged submissions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flagged:
    """A stuck or slow submission, with why."""

    submission_id: int
    phase_id: int
    team: str | None
    method: str
    status: str
    submitted_at: dt.datetime
    reason: str
    seconds: float  # how long it has waited (stuck) or scoring took (slow)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def percentile_95(values: list[float]) -> float:
    """The nearest-rank 95th percentile of non-empty `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# --- teams and quotas -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaUse:
    """What quota_for says of one team in one phase, from the challenge's aggregate counts."""

    today: int
    total: int
    per_day: int | None
    max_total: int | None

    @property
    def per_day_left(self) -> int | None:
        return None if self.per_day is None else max(0, self.per_day - self.today)

    @property
    def total_left(self) -> int | None:
        return None if self.max_total is None else max(0, self.max_total - self.total)

    @property
    def used_up(self) -> bool:
        return self.per_day_left == 0 or self.total_left == 0


@dataclass(frozen=True)
class TeamRow:
    team_id: int
    name: str
    members: tuple[str, ...]
    submissions: int
    last_submission_at: dt.datetime | None
    quotas: tuple[tuple[Phase, QuotaUse], ...]


# --- the dashboard --------------------------------------------------------------------------------------------


@dataclass
class Section:
    """The figures of one phase, or of the whole challenge (phase None)."""

    phase: Phase | None
    days: list[dt.date]
    finished: list[int]
    failed: list[int]
    other: list[int]
    statuses: dict[str, int]
    failures: list[FailureGroup]
    stuck: list[Flagged]
    stuck_count: int
    slow: list[Flagged]
    slow_count: int
    p95_seconds: float | None

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True)
class Dashboard:
    challenge: Challenge
    time_zone: str
    now: dt.datetime
    overall: Section
    phases: tuple[Section, ...]
    teams: tuple[TeamRow, ...]
    median_wait_seconds: float | None


def _window(phase: Phase | None, today: dt.date, zone: zoneinfo.ZoneInfo) -> list[dt.date]:
    end = today
    if phase is not None and phase.ends_at is not None:
        end = min(today, phase.ends_at.astimezone(zone).date())
    start = end - dt.timedelta(days=DAYS - 1)
    if phase is not None and phase.starts_at is not None:
        first = phase.starts_at.astimezone(zone).date()
        if first <= end and (end - first).days < MAX_DAYS:
            start = first
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def challenge_dashboard(*, challenge: Challenge, now: dt.datetime | None = None) -> Dashboard:
    """Everything the dashboard shows (see the module's rules). The caller checks that the viewer may see it
    (organizer_can ... Can.VIEW)."""
    now = now or timezone.now()
    zone = zoneinfo.ZoneInfo(challenge.time_zone or "UTC")
    today = now.astimezone(zone).date()
    phases = list(Phase.objects.filter(challenge=challenge).order_by("order", "id"))
    submissions = Submission.objects.filter(phase__challenge=challenge)
    windows = {None: _window(None, today, zone), **{p.pk: _window(p, today, zone) for p in phases}}

    statuses: dict[int, dict[str, int]] = defaultdict(dict)
    for phase_id, status, n in submissions.values_list("phase_id", "status").annotate(n=Count("id")).order_by():
        statuses[phase_id][status] = n

    first_day = min(days[0] for days in windows.values())
    since = dt.datetime.combine(first_day, dt.time(), tzinfo=zone)
    daily: dict[tuple[int, dt.date], dict[str, int]] = defaultdict(lambda: {"finished": 0, "failed": 0, "other": 0})
    for phase_id, day, status, n in (submissions.filter(submitted_at__gte=since)
                                     .annotate(day=TruncDate("submitted_at", tzinfo=zone))
                                     .values_list("phase_id", "day", "status").annotate(n=Count("id")).order_by()):
        daily[(phase_id, day)][status if status in (Status.FINISHED, Status.FAILED) else "other"] += n

    failures: dict[tuple[int, str, str], FailureGroup] = {}
    for submission_id, phase_id, kind, message, at in (submissions.filter(status=Status.FAILED).order_by()
                                                       .values_list("id", "phase_id", "failure_kind",
                                                                    "failure_message", "submitted_at")
                                                       .iterator(chunk_size=2000)):
        key = (phase_id, kind or "", failure_pattern(message))
        failures.setdefault(key, FailureGroup(*key[1:])).add(submission_id, phase_id, message, at)

    median_wait = _median_wait(submissions)
    stuck = _stuck(submissions, now, median_wait)
    slow, p95 = _slow(submissions)

    def section(phase: Phase | None) -> Section:
        ids = [p.pk for p in phases] if phase is None else [phase.pk]
        days = windows[phase.pk if phase else None]
        series = {name: [sum(daily[(pid, d)][name] for pid in ids if (pid, d) in daily) for d in days]
                  for name in ("finished", "failed", "other")}
        merged: dict[str, int] = defaultdict(int)
        for pid in ids:
            for status, n in statuses.get(pid, {}).items():
                merged[status] += n
        flagged_stuck = [f for f in stuck if f.phase_id in ids]
        flagged_slow = sorted((f for f in slow if f.phase_id in ids), key=lambda f: -f.seconds)
        return Section(
            phase=phase, days=days, finished=series["finished"], failed=series["failed"], other=series["other"],
            statuses=dict(merged), failures=_merged([g for (pid, _, _), g in failures.items() if pid in ids]),
            stuck=flagged_stuck[:SHOWN], stuck_count=len(flagged_stuck),
            slow=flagged_slow[:SHOWN], slow_count=len(flagged_slow),
            p95_seconds=p95.get(phase.pk) if phase is not None else None)

    return Dashboard(challenge=challenge, time_zone=str(zone), now=now, overall=section(None),
                     phases=tuple(section(p) for p in phases), teams=tuple(_teams(challenge, phases, now)),
                     median_wait_seconds=median_wait)


def _merged(groups: list[FailureGroup]) -> list[FailureGroup]:
    """Groups of several phases with the same reason as one, most frequent first."""
    merged: dict[tuple[str, str], FailureGroup] = {}
    for group in groups:
        into = merged.setdefault((group.kind, group.pattern), FailureGroup(group.kind, group.pattern))
        into.count += group.count
        into.phases |= group.phases
        if into.latest_at is None or (group.latest_at, group.latest_id) > (into.latest_at, into.latest_id):
            into.latest_id, into.latest_message, into.latest_at = group.latest_id, group.latest_message, group.latest_at
    return sorted(merged.values(), key=lambda g: (-g.count, g.kind, g.pattern))


def _median_wait(submissions) -> float | None:  # type: ignore[no-untyped-def]
    """The median time the challenge's recent scored submissions waited for a worker."""
    recent = (submissions.filter(started_at__isnull=False).order_by("-started_at")
              .values_list("submitted_at", "queued_at", "started_at")[:WAIT_SAMPLE])
    waits = [max(0.0, (started - max(submitted, queued or submitted)).total_seconds())
             for submitted, queued, started in recent]
    return statistics.median(waits) if waits else None


def _stuck(submissions, now: dt.datetime, median_wait: float | None) -> list[Flagged]:  # type: ignore[no-untyped-def]
    floor = settings.DASHBOARD_STUCK_WAIT_SECONDS
    wait_limit = max(floor, settings.DASHBOARD_STUCK_FACTOR * median_wait) if median_wait is not None else floor
    found = []
    for (submission_id, phase_id, team, method, status, submitted_at, queued_at, started_at, lease_expires_at,
         unsent) in (submissions.filter(status__in=Submission.ACTIVE).order_by("submitted_at", "id")
                     .values_list("id", "phase_id", "team__name", "method_name", "status", "submitted_at",
                                  "queued_at", "started_at", "lease_expires_at", "unsent").iterator(chunk_size=2000)):
        waited = (now - max(submitted_at, queued_at or submitted_at)).total_seconds()
        reason = ""
        if lease_expires_at is not None and lease_expires_at < now:
            reason = f"its worker's lease ran out {_duration((now - lease_expires_at).total_seconds())} ago"
        elif status != Status.SUBMITTED and lease_expires_at is None and started_at is not None and (
                now - started_at).total_seconds() > settings.SCORING_STUCK_AFTER:
            reason = f"claimed {_duration((now - started_at).total_seconds())} ago without a lease"
        elif status == Status.SUBMITTED and waited > wait_limit:  # claimed ones are the leases' business
            median = f" (median wait {_duration(median_wait)})" if median_wait is not None else ""
            reason = f"waiting for {_duration(waited)}{median}" + (", its task was not sent" if unsent else "")
        if reason:
            found.append(Flagged(submission_id, phase_id, team, method, status, submitted_at, reason, waited))
    return found


def _slow(submissions) -> tuple[list[Flagged], dict[int, float]]:  # type: ignore[no-untyped-def]
    """The slow finished submissions and each phase's 95th percentile of scoring time (phases with enough)."""
    seconds: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for submission_id, phase_id, took in (submissions.filter(status=Status.FINISHED, scoring_seconds__isnull=False)
                                          .order_by().values_list("id", "phase_id", "scoring_seconds")
                                          .iterator(chunk_size=5000)):
        seconds[phase_id].append((took, submission_id))
    p95 = {pid: percentile_95([t for t, _ in values]) for pid, values in seconds.items() if len(values) >= P95_MIN}
    limit = settings.DASHBOARD_SLOW_SECONDS
    reasons: dict[int, tuple[float, str]] = {}
    for phase_id, values in seconds.items():
        for took, submission_id in values:
            if phase_id in p95 and took > p95[phase_id]:
                reasons[submission_id] = (took, f"scored in {_duration(took)}, above the phase's 95th percentile "
                                                f"({_duration(p95[phase_id])})")
            elif limit and took > limit:
                reasons[submission_id] = (took, f"scored in {_duration(took)}, above {_duration(limit)}")
    # Only the ones shown need their team and method (the longest SHOWN per phase would do; all flagged are few).
    rows = (Submission.objects.filter(pk__in=list(reasons)).order_by()
            .values_list("id", "phase_id", "team__name", "method_name", "status", "submitted_at")) if reasons else []
    flagged = [Flagged(sid, pid, team, method, status, at, reasons[sid][1], reasons[sid][0])
               for sid, pid, team, method, status, at in rows]
    return flagged, p95


def _teams(challenge: Challenge, phases: list[Phase], now: dt.datetime) -> list[TeamRow]:
    members: dict[int, list[str]] = defaultdict(list)
    for team_id, username in (Membership.objects.filter(challenge=challenge).order_by("joined_at", "id")
                              .values_list("team_id", "user__username")):
        members[team_id].append(username)
    activity = {team_id: (n, last) for team_id, n, last in (
        Submission.objects.filter(phase__challenge=challenge, team__isnull=False).values_list("team_id")
        .annotate(n=Count("id"), last=Max("submitted_at")).order_by())}
    start = day_start(now)
    used: dict[tuple[int, int], tuple[int, int]] = {}
    for team_id, phase_id, total, today in (
            Submission.objects.filter(Submission.counted(), phase__challenge=challenge, team__isnull=False)
            .values_list("team_id", "phase_id")
            .annotate(total=Count("id"), today=Count("id", filter=Q(submitted_at__gte=start))).order_by()):
        used[(team_id, phase_id)] = (total, today)
    rows = []
    for team_id, name in Team.objects.filter(challenge=challenge).order_by("name").values_list("id", "name"):
        n, last = activity.get(team_id, (0, None))
        quotas = tuple((phase, QuotaUse(today=used.get((team_id, phase.pk), (0, 0))[1],
                                        total=used.get((team_id, phase.pk), (0, 0))[0],
                                        per_day=phase.max_per_day, max_total=phase.max_total)) for phase in phases)
        rows.append(TeamRow(team_id, name, tuple(members.get(team_id, ())), n, last, quotas))
    return rows
