"""Fill a phase with many scored submissions, fast, to measure the boards under load:

    python manage.py seed_load --phase CHALLENGE/PHASE --submissions 10000 --teams 1000 [--seed 0]

The challenge and the phase are made when they do not exist (the phase opens for submissions, with no
quota); a phase that already has submissions is refused. Teams `load-0001`... (each with one owner,
`load-<challenge>-0001`..., who cannot log in) are made when missing and reused when there. Then
teams, users, memberships, submissions and their scores go in with bulk inserts (nothing is scored
here, no file is stored), spread like a real phase: every team submits at least once, a few teams
submit a lot; each team has a skill around which its scores vary, the long split is the hardest;
about 6% failed, 2% cancelled, 1% still waiting, 5% kept private by their team, 1% hidden by an
organizer, and three organizer baselines. Every scored submission also gets the per-expression analysis a
worker stores (Analysis: 700 expressions laid out as the real benchmark's 315 videos, medium clips cut from 15
long videos), under a ground-truth bundle "load" with those traits, so the boards' intervals and tie groups
are computed as on a real phase (`--no-statistics` leaves them out). Last, the boards are built the normal way
(board_changed).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from leaderboard.accounts.models import Membership, Team
import numpy as np

from leaderboard.challenges.models import Challenge, GroundTruthBundle, Phase
from leaderboard.challenges.services import phase_create
from leaderboard.submissions.boards import board_changed, boards_deferred
from leaderboard.submissions.models import Analysis, Board, BoardRow, Score, Submission
from scoring import METRICS, SCORER_VERSION, SPLITS
from scoring.stats import cluster_of

Status = Submission.Status
EXPRESSIONS = {"short": 1200, "medium": 800, "long": 500}  # per split, as a full-size benchmark has
DIFFICULTY = {"short": 0.0, "medium": -6.0, "long": -14.0}  # points off a team's skill
BATCH = 2000
BASELINES = ["Reference tracker", "Empty masks", "First-frame propagation"]


def _percent(value: float) -> float:
    return round(min(100.0, max(0.0, value)), 4)


def _scores(rng: random.Random, level: float) -> dict[str, dict[str, float]]:
    """The four metrics per split around `level` (IoU_gold_pred, in percent), and the overall row: the
    splits' mean weighted by their expressions, as the scorer gives it."""
    splits: dict[str, dict[str, float]] = {}
    for split in SPLITS:
        primary = level + DIFFICULTY[split] + rng.gauss(0.0, 2.5)
        splits[split] = {"IoU_gold_pred": _percent(primary), "IoU_gold": _percent(primary + 4 + rng.gauss(0, 1.5)),
                         "IoU_all": _percent(primary - 5 + rng.gauss(0, 2.0)),
                         "T_recall": _percent(primary + 20 + rng.gauss(0, 4.0))}
    total = sum(EXPRESSIONS.values())
    splits["overall"] = {metric: round(sum(splits[s][metric] * EXPRESSIONS[s] for s in SPLITS) / total, 4)
                         for metric in splits["short"]}
    return splits


class Command(BaseCommand):
    help = "Fill a phase with many scored submissions from many teams (bulk inserts), then build its boards."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phase", required=True, help="CHALLENGE/PHASE (slugs); made when missing")
        parser.add_argument("--submissions", type=int, default=10_000)
        parser.add_argument("--teams", type=int, default=1_000)
        parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same scores")
        parser.add_argument("--no-statistics", dest="statistics", action="store_false",
                            help="no per-expression analyses (the boards then have no intervals or tie groups)")

    def handle(self, *args: Any, phase: str, submissions: int, teams: int, seed: int, statistics: bool = True,
               **options: Any) -> None:
        challenge_slug, _, phase_slug = phase.partition("/")
        if not challenge_slug or not phase_slug or "/" in phase_slug:
            raise CommandError(f"--phase must be CHALLENGE/PHASE (two slugs), not {phase!r}.")
        if teams < 1 or submissions < teams + len(BASELINES):
            raise CommandError(f"--teams must be at least 1 and --submissions at least --teams + {len(BASELINES)} "
                               f"(every team submits once, and the baselines), not {teams} and {submissions}.")
        started = time.perf_counter()
        rng = random.Random(seed)
        with transaction.atomic(), boards_deferred():
            target = self._phase(challenge_slug, phase_slug)
            team_ids = self._teams(target.challenge, teams)
            made = self._submissions(rng, target, team_ids, submissions)
            primary = self._scores(rng, made)
            if statistics:
                self._analyses(seed, target, primary)
            seeded = time.perf_counter() - started
            board_changed(phase_id=target.pk)  # rebuilt when the deferred block ends
        board = Board.objects.get(phase=target)
        scored = sum(1 for _, _, status, _ in made if status == Status.FINISHED)
        self.stdout.write(
            f"Seeded {len(made)} submissions ({scored} scored) from {teams} teams into {challenge_slug}/{phase_slug} "
            f"in {seeded:.1f} s; its boards (version {board.version}, "
            f"{BoardRow.objects.filter(phase=target).count()} rows) were built in {board.refresh_seconds:.2f} s.")

    def _phase(self, challenge_slug: str, phase_slug: str) -> Phase:
        challenge, _ = Challenge.objects.get_or_create(slug=challenge_slug, defaults={"title": challenge_slug})
        found = Phase.objects.filter(challenge=challenge, slug=phase_slug).select_related("challenge").first()
        if found is None:
            return phase_create(challenge=challenge, slug=phase_slug, name=phase_slug)
        if (count := found.submissions.count()):
            raise CommandError(f"The phase {challenge_slug}/{phase_slug} already has {count} submissions; "
                               "seed a new phase.")
        return found

    def _teams(self, challenge: Challenge, count: int) -> list[int]:
        """The ids of teams load-0001... of the challenge, made (with their owners) where missing."""
        names = [f"load-{i:04d}" for i in range(1, count + 1)]
        existing = dict(Team.objects.filter(challenge=challenge, name__in=names).values_list("name", "pk"))
        missing = [name for name in names if name not in existing]
        if missing:
            users = get_user_model()
            password = make_password(None)  # unusable: nobody logs in as a load team
            usernames = [f"load-{challenge.slug}-{name[5:]}"[:150] for name in missing]
            taken = set(users.objects.filter(username__in=usernames).values_list("username", flat=True))
            users.objects.bulk_create([users(username=u, password=password, email=f"{u}@load.invalid")
                                       for u in usernames if u not in taken], batch_size=BATCH)
            owners = dict(users.objects.filter(username__in=usernames).values_list("username", "pk"))
            # Verified, as a participant who submits is (admission asks for a verified address).
            EmailAddress.objects.bulk_create([EmailAddress(user_id=pk, email=f"{username}@load.invalid", verified=True,
                                                           primary=True) for username, pk in owners.items()],
                                             batch_size=BATCH, ignore_conflicts=True)
            made = Team.objects.bulk_create([Team(challenge=challenge, name=name, created_by_id=owners[username])
                                             for name, username in zip(missing, usernames, strict=True)],
                                            batch_size=BATCH)
            in_challenge = set(Membership.objects.filter(challenge=challenge, user_id__in=owners.values())
                               .values_list("user_id", flat=True))
            Membership.objects.bulk_create([Membership(team=team, user_id=team.created_by_id, challenge=challenge,
                                                       role=Membership.Role.OWNER)
                                            for team in made if team.created_by_id not in in_challenge],
                                           batch_size=BATCH)
            existing.update({team.name: team.pk for team in made})
        return [existing[name] for name in names]

    def _submissions(self, rng: random.Random, phase: Phase, team_ids: list[int],
                     count: int) -> list[tuple[int, int | None, str, float]]:
        """(id, team id, status, level) of each submission made, oldest first."""
        # Every team once, then the rest skewed: a few teams submit much more than most.
        weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(team_ids))]
        owners = team_ids + rng.choices(team_ids, weights=weights, k=count - len(team_ids) - len(BASELINES))
        rng.shuffle(owners)
        skill = {team: rng.uniform(15.0, 70.0) for team in team_ids}
        start = timezone.now() - dt.timedelta(days=60)
        step = dt.timedelta(days=59) / max(1, count)
        rows, levels = [], []
        for index, team in enumerate([*owners, *([None] * len(BASELINES))]):
            roll = rng.random()
            status = (Status.FAILED if roll < 0.06 else Status.CANCELLED if roll < 0.08
                      else Status.SUBMITTED if roll < 0.09 else Status.FINISHED)
            if team is None:
                status, method, level = Status.FINISHED, BASELINES[index - len(owners)], rng.uniform(10.0, 45.0)
            else:
                method, level = f"method {rng.randint(1, 9)}", skill[team] + rng.gauss(0.0, 6.0)
            at = start + step * index + dt.timedelta(seconds=rng.uniform(0, 30))
            rows.append(Submission(
                phase=phase, team_id=team, file=f"load/{phase.pk}/{index}.zip",  # never stored: nothing reads it
                file_sha256=f"{rng.getrandbits(256):064x}", file_size=rng.randint(10**6, 10**8), method_name=method,
                method_url=f"https://example.org/papers/{index}" if rng.random() < 0.3 else "",
                status=status, is_baseline=team is None, is_public=team is None or rng.random() >= 0.05,
                hidden=team is not None and rng.random() < 0.01,
                failure_message="Your submission could not be scored (seeded)." if status == Status.FAILED else "",
                scorer_version=SCORER_VERSION if status == Status.FINISHED else "",
                gt_version="load" if status == Status.FINISHED else "", submitted_at=at,
                started_at=at if status != Status.SUBMITTED else None,
                finished_at=at + dt.timedelta(minutes=2) if status in Submission.TERMINAL else None,
                scoring_seconds=rng.uniform(20, 200) if status == Status.FINISHED else None))
            levels.append(level)
        made = Submission.objects.bulk_create(rows, batch_size=BATCH)
        return [(s.pk, s.team_id, s.status, level) for s, level in zip(made, levels, strict=True)]

    def _scores(self, rng: random.Random, made: list[tuple[int, int | None, str, float]]
                ) -> dict[int, dict[str, float]]:
        """Score rows for the finished submissions; returns each one's primary metric per split (percent)."""
        total = sum(EXPRESSIONS.values())
        drawn = {pk: _scores(rng, level) for pk, _, status, level in made if status == Status.FINISHED}
        Score.objects.bulk_create([Score(submission_id=pk, split=split, n_expressions=EXPRESSIONS.get(split, total),
                                         scorer_version=SCORER_VERSION, gt_version="load", **values)
                                   for pk, splits in drawn.items() for split, values in splits.items()],
                                  batch_size=BATCH)
        return {pk: {split: values["IoU_gold_pred"] for split, values in splits.items()}
                for pk, splits in drawn.items()}

    def _analyses(self, seed: int, phase: Phase, primary: dict[int, dict[str, float]]) -> None:
        """A "load" ground truth with the real benchmark's layout of expressions, and per scored submission
        its per-expression metrics: per split around its Score's primary metric, with what makes paired tests
        paired in real results (some videos and expressions are hard for every method) and each method's own
        noise per expression."""
        keys = _layout()
        bundle = GroundTruthBundle.objects.create(
            challenge=phase.challenge, name="load (no file)", file="load/none.zip", sha256="load", version="load",
            status=GroundTruthBundle.Status.READY,
            traits={"format": 1, "gt_version": "load", "k": 5, "traits": {},
                    "expressions": [{"split": s, "video": v, "exp_id": e, "cluster": cluster_of(s, v)}
                                    for s, v, e in keys]})
        Phase.objects.filter(pk=phase.pk).update(ground_truth=bundle)
        generator = np.random.default_rng(seed)
        clusters = sorted({cluster_of(s, v) for s, v, _ in keys})
        hard_video = dict(zip(clusters, generator.normal(0.0, 0.10, len(clusters))))
        shared = np.array([hard_video[cluster_of(s, v)] for s, v, _ in keys]) + generator.normal(0.0, 0.08, len(keys))
        split_of = np.array([s for s, _, _ in keys])
        rows = []
        for pk, splits in primary.items():
            target = np.array([splits[s] / 100.0 for s in split_of])
            drawn = target + shared + generator.normal(0.0, 0.08, len(keys))
            for split in SPLITS:  # each split's mean is its Score's value
                chosen = split_of == split
                drawn[chosen] += splits[split] / 100.0 - drawn[chosen].mean()
            values = np.stack([np.clip(drawn + d, 0, 1) for d in (0.2, -0.05, 0.04, 0.0)])
            assert values.shape == (len(METRICS), len(keys))
            rows.append(Analysis(submission_id=pk, gt_version="load", values=values.astype("<f8").tobytes()))
            if len(rows) >= BATCH // 4:
                Analysis.objects.bulk_create(rows)
                rows = []
        Analysis.objects.bulk_create(rows)


def _layout() -> list[tuple[str, str, str]]:
    """(split, video, exp_id) of 700 expressions as EgoMask has them: 200 short videos x 2, 100 medium clips
    x 2 (cut from 15 long videos), 15 long videos with 100 expressions."""
    keys = [("short", f"short_{v:03d}", str(e)) for v in range(200) for e in range(2)]
    keys += [("medium", f"long_{v % 15:03d}--{v // 15}", str(e)) for v in range(100) for e in range(2)]
    keys += [("long", f"long_{i % 15:03d}", str(i // 15)) for i in range(100)]
    return keys
