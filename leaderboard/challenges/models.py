from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from leaderboard.storage import private_storage
from scoring import METRICS, PRIMARY_METRIC

METRIC_CHOICES = [(m, m) for m in METRICS]
SPLIT_CHOICES = [("short", "short"), ("medium", "medium"), ("long", "long"), ("overall", "overall")]
SPLIT_ORDER = [code for code, _ in SPLIT_CHOICES]


def validate_time_zone(name: str) -> None:
    """An IANA time zone name that this machine knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not a time zone name (examples: UTC, Europe/Paris, Etc/GMT+12).") from None


class Challenge(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown, rendered safely")
    terms = models.TextField(blank=True, help_text="Markdown; a phase may require accepting them before the first "
                             "submission (a new text must be accepted again)")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone],
                                 help_text="an IANA name (Europe/Paris, Etc/GMT+12): the zone the challenge's dates "
                                 "are written in, in its YAML and on its pages")
    is_published = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()  # the audit log (leaderboard/audit.py)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return self.title


def _ground_truth_path(instance: GroundTruthBundle, filename: str) -> str:
    return f"ground-truth/{instance.challenge_id}/{timezone.now():%Y%m%d%H%M%S}-{filename}"


class GroundTruthBundle(models.Model):
    """A versioned ground-truth tree (zip, published EgoMask layout) in private storage."""

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        INVALID = "invalid"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="ground_truths")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=_ground_truth_path, storage=private_storage, max_length=500)
    sha256 = models.CharField(max_length=64, blank=True)
    version = models.CharField(max_length=64, blank=True, help_text="content hash computed by the scorer")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True, editable=False,
                              help_text="per-expression egocentric traits and their buckets (scoring.diagnostics), "
                              "computed once for this version")
    public_inputs = models.JSONField(default=dict, blank=True, editable=False,
                                     help_text="what participants may see (videos, frames, expressions): no mask")
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(excluded_fields=["traits"])  # the audit log (leaderboard/audit.py)

    def __str__(self) -> str:
        return f"{self.name} ({self.version[:12] or self.status})"


class Phase(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private", "private until the reveal time"

    class Rule(models.TextChoices):
        BEST = "best", "best by the primary metric"
        LATEST = "latest", "latest finished submission"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    accepts_submissions = models.BooleanField(default=True)
    max_per_day = models.PositiveIntegerField(null=True, blank=True, help_text="empty: no daily limit")
    max_total = models.PositiveIntegerField(null=True, blank=True, help_text="empty: no total limit")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    reveal_at = models.DateTimeField(null=True, blank=True, help_text="a private board becomes public then")
    ranking_rule = models.CharField(max_length=10, choices=Rule.choices, default=Rule.BEST)
    primary_metric = models.CharField(max_length=20, choices=METRIC_CHOICES, default=PRIMARY_METRIC)
    show_expression_details = models.BooleanField(
        default=False, help_text="teams see their per-expression results, per-video and per-frame details (a test "
        "phase keeps this off: nothing is told per video)")
    bootstrap_samples = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(100), MaxValueValidator(100_000)],
        help_text="bootstrap resamples (over videos) for the 95% confidence intervals and the paired tests")
    tie_level = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)],
        help_text="adjacent rows whose paired test does not reject at this level (Holm-corrected along the board) "
        "are shown as statistically tied")
    min_bucket_size = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)],
        help_text="a trait bucket with fewer expressions is not shown to teams (test phases tell nothing per video)")
    ladder = models.BooleanField(
        default=False, help_text="the Ladder (Blum & Hardt, 2015): a team's shown score changes only when a new "
        "submission beats it by more than the step, rounded to the step; exact scores when the phase ends")
    ladder_step = models.FloatField(default=1.0, validators=[MinValueValidator(0.01), MaxValueValidator(50.0)],
                                    help_text="the Ladder's step, in points of the primary metric")
    quota_counts_failed = models.BooleanField(
        default=False, help_text="submissions that fail on the file count against the quota (failing uploads are a "
        "probing channel too)")
    requires_terms = models.BooleanField(default=False, help_text="the submitter must have accepted the challenge's "
                                         "current terms before a submission is taken")
    ground_truth = models.ForeignKey(GroundTruthBundle, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="phases")
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()  # the audit log (leaderboard/audit.py)

    class Meta:
        ordering = ["challenge", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["challenge", "slug"], name="phase_slug_unique")]

    def __str__(self) -> str:
        return f"{self.challenge.slug} / {self.name}"

    def is_open(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        now = now or timezone.now()
        return (
            self.accepts_submissions
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )

    def ladder_active(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        """The Ladder is on and the phase has not ended: exact scores stay hidden from everyone but organizers."""
        return self.ladder and (self.ends_at is None or (now or timezone.now()) < self.ends_at)

    def is_revealed(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        if self.visibility == self.Visibility.PUBLIC:
            return True
        return self.reveal_at is not None and (now or timezone.now()) >= self.reveal_at


class PhaseSplit(models.Model):
    """One leaderboard of a phase: a split, or the overall row."""

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="splits")
    code = models.CharField(max_length=10, choices=SPLIT_CHOICES)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["phase", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["phase", "code"], name="phase_split_unique")]

    def __str__(self) -> str:
        return f"{self.phase} / {self.code}"


class Host(models.Model):
    """A user who runs one challenge, with a role (see permissions.GRANTS for what each role may do). Staff
    users run every challenge without a row here."""

    class Role(models.TextChoices):
        OWNER = "owner", "owner (everything, and who the hosts are)"
        ORGANIZER = "organizer", "organizer (configure, moderate, rescore)"
        VIEWER = "viewer", "viewer (sees everything, changes nothing)"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="hosts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hosting")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ORGANIZER)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()  # the audit log (leaderboard/audit.py)

    class Meta:
        ordering = ["challenge", "user__username"]
        constraints = [models.UniqueConstraint(fields=["challenge", "user"], name="one_host_role_per_challenge")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role} of {self.challenge.slug})"


class TermsAcceptance(models.Model):
    """A user accepted one text of a challenge's terms (by its sha256: changed terms need a new acceptance)."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="terms_acceptances")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terms_acceptances")
    terms_sha256 = models.CharField(max_length=64)
    accepted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "user", "terms_sha256"],
                                               name="one_acceptance_per_terms_text")]

    def __str__(self) -> str:
        return f"{self.user} accepted the terms of {self.challenge.slug} ({self.terms_sha256[:12]})"
