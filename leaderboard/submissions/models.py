from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from leaderboard.challenges.models import SPLIT_CHOICES
from leaderboard.storage import private_storage


def _submission_path(instance: Submission, filename: str) -> str:
    return f"submissions/{instance.phase_id}/{timezone.now():%Y%m%d%H%M%S}-{instance.file_sha256[:16]}.zip"


def _details_path(instance: Submission, filename: str) -> str:
    return f"results/{instance.phase_id}/{instance.pk}-{filename}"


class RetryReason(models.TextChoices):
    WORKER_LOST = "worker_lost", "retrying after a worker stopped"
    INTERNAL = "internal", "retrying after an error on our side"


class FailureKind(models.TextChoices):
    INVALID = "invalid", "the file has problems"
    CRASHED = "crashed", "the file stopped the scorer"
    INTERNAL = "internal", "an error on our side"


class Submission(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted"
        VALIDATING = "validating"
        SCORING = "scoring"
        FINISHED = "finished"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.SUBMITTED, Status.VALIDATING, Status.SCORING)
    TERMINAL = (Status.FINISHED, Status.FAILED, Status.CANCELLED)
    # Statuses that use quota: everything but failed and cancelled (and see counted()).
    COUNTED = (Status.SUBMITTED, Status.VALIDATING, Status.SCORING, Status.FINISHED)

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="submissions")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="submissions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="submissions")
    file = models.FileField(upload_to=_submission_path, storage=private_storage, max_length=500)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.BigIntegerField(default=0)
    method_name = models.CharField(max_length=200)
    method_description = models.TextField(blank=True)
    method_url = models.URLField(blank=True, help_text="paper or project page")
    code_url = models.URLField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBMITTED, db_index=True)
    failure_message = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    is_baseline = models.BooleanField(default=False)
    is_public = models.BooleanField(default=True, help_text="the team shows this submission on public boards")
    hidden = models.BooleanField(default=False, help_text="hidden by an organizer")
    hidden_reason = models.TextField(blank=True, help_text="why it is hidden, in the organizers' words (the team "
                                     "sees it)")
    flagged = models.BooleanField(default=False, help_text="flagged by an organizer: stays on the boards, marked")
    flag_reason = models.TextField(blank=True, help_text="why it is flagged (the team and the boards see it)")
    details = models.FileField(upload_to=_details_path, storage=private_storage, blank=True, max_length=500)
    scorer_version = models.CharField(max_length=32, blank=True)
    gt_version = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    scoring_seconds = models.FloatField(null=True, blank=True)
    # The worker scoring the current attempt holds a lease on it and renews it while it works; an
    # attempt whose lease ran out was left by a worker that stopped, and another one takes it over.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lost_workers = models.PositiveSmallIntegerField(default=0, help_text="workers that stopped while scoring "
                                                    "this submission since it was last (re)submitted")
    unsent = models.BooleanField(default=False, help_text="its scoring task could not be sent (broker down); "
                                                         "the reconciler sends it")
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when its current attempt was last sent "
                                     "for scoring after the upload (a retry, a rescore, the reconciler)")
    retry_reason = models.CharField(max_length=16, choices=RetryReason.choices, blank=True,
                                    help_text="why the current attempt is a retry")
    failure_kind = models.CharField(max_length=10, choices=FailureKind.choices, blank=True)
    crash_report = models.TextField(blank=True, help_text="for organizers: the scorer's traceback")
    receipt = models.JSONField(default=dict, blank=True, editable=False,
                               help_text="the signed receipt of the latest scoring (leaderboard/receipts.py)")
    idempotency_key = models.CharField(max_length=200, blank=True,
                                       help_text="the client's Idempotency-Key: a retried upload finds this one")
    # The audit log: every save, and every conditional UPDATE of grading.py through history.record_changed.
    # The lease's renewals are not history (they change only lease_expires_at, and are not recorded).
    history = HistoricalRecords(excluded_fields=["lease_expires_at", "receipt"])

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["phase", "team", "status"]),
                   models.Index(fields=["phase", "file_sha256"])]
        constraints = [models.UniqueConstraint(fields=["phase", "user", "idempotency_key"],
                                               condition=~models.Q(idempotency_key=""),
                                               name="one_submission_per_idempotency_key")]

    # Not a field: True on the submission that admission returns for a retried upload (same Idempotency-Key,
    # or the same file from the same team moments ago) instead of creating a second one.
    replayed = False

    def __str__(self) -> str:
        return f"#{self.pk} {self.method_name}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def status_note(self) -> str:
        """What an active submission is doing beyond its status, in words ("" when nothing to add)."""
        if self.status not in self.ACTIVE or not self.retry_reason:
            return ""
        return f"{RetryReason(self.retry_reason).label.capitalize()} (attempt {self.attempt})."

    @classmethod
    def counted(cls) -> models.Q:
        """The submissions that use quota: all but failed and cancelled ones, except that a file that
        crashed the scorer counts (it used a worker's time like any scored one), and, in a phase that sets
        quota_counts_failed, so does a file that failed on its problems (failing uploads are a probing
        channel too). A failure on our side (internal) never counts. A condition on the submission and its
        phase: it holds in any query of submissions, of one phase or of many."""
        return (models.Q(status__in=cls.COUNTED)
                | models.Q(status=cls.Status.FAILED, failure_kind=FailureKind.CRASHED)
                | models.Q(status=cls.Status.FAILED, failure_kind=FailureKind.INVALID,
                           phase__quota_counts_failed=True))


class Disqualification(models.Model):
    """A team disqualified from a phase by its organizers: its rows leave the phase's boards and it may not
    submit there, with `reason` shown to the team, until the disqualification is lifted (kept, with who lifted
    it and why: lifting is reversible too, by a new disqualification)."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="disqualifications")
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="disqualifications")
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    lift_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["phase", "team"], condition=models.Q(lifted_at__isnull=True),
                                               name="one_standing_disqualification")]

    def __str__(self) -> str:
        state = "lifted" if self.lifted_at else "standing"
        return f"{self.team} disqualified from {self.phase} ({state})"

    @property
    def is_standing(self) -> bool:
        return self.lifted_at is None


class Score(models.Model):
    """One row per (submission, split): the four metrics in percent and the versions that made them."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="scores")
    split = models.CharField(max_length=10, choices=SPLIT_CHOICES)
    T_recall = models.FloatField()
    IoU_all = models.FloatField()
    IoU_gold = models.FloatField()
    IoU_gold_pred = models.FloatField()
    n_expressions = models.PositiveIntegerField()
    ci = models.JSONField(default=dict, blank=True, help_text="95% bootstrap interval per metric, in percent: "
                          "{metric: [low, high]} (scoring.stats)")
    scorer_version = models.CharField(max_length=32)
    gt_version = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["submission", "split"], name="one_score_per_split")]

    def __str__(self) -> str:
        # An admin's inline or a message names a score by what it says, never "Score object (45)".
        values = ", ".join(f"{name} {value:.2f}" for name, value in self.metrics().items())
        return f"{self.get_split_display()}: {values}"

    def metrics(self) -> dict[str, float]:
        return {"T_recall": self.T_recall, "IoU_all": self.IoU_all, "IoU_gold": self.IoU_gold,
                "IoU_gold_pred": self.IoU_gold_pred}


class ScoreHistory(models.Model):
    """Every score set a submission ever had: one row per (submission, attempt, split), written when an attempt's
    scores replace the previous ones (grading._finish), so a rescore after a ground-truth switch keeps the old
    numbers and the versions that made them."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="score_history")
    attempt = models.PositiveIntegerField()
    split = models.CharField(max_length=10, choices=SPLIT_CHOICES)
    T_recall = models.FloatField()
    IoU_all = models.FloatField()
    IoU_gold = models.FloatField()
    IoU_gold_pred = models.FloatField()
    n_expressions = models.PositiveIntegerField()
    ci = models.JSONField(default=dict, blank=True)
    scorer_version = models.CharField(max_length=32)
    gt_version = models.CharField(max_length=64)
    scored_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["submission", "-scored_at", "-attempt", "id"]
        constraints = [models.UniqueConstraint(fields=["submission", "attempt", "split"],
                                               name="one_history_row_per_attempt_split")]
        verbose_name_plural = "score history"

    def __str__(self) -> str:
        return f"#{self.submission_id} attempt {self.attempt} {self.split}"

    def metrics(self) -> dict[str, float]:
        return {"T_recall": self.T_recall, "IoU_all": self.IoU_all, "IoU_gold": self.IoU_gold,
                "IoU_gold_pred": self.IoU_gold_pred}


class Upload(models.Model):
    """A large file on its way into private storage, in parts. It becomes a Submission only once it
    is complete and verified; until then it uses no quota, and an abandoned one is cleaned up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        COMPLETING = "completing"
        COMPLETED = "completed"
        ABORTED = "aborted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    is_baseline = models.BooleanField(default=False)
    filename = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(null=True, blank=True, help_text="declared by the client")
    parts = models.PositiveIntegerField(default=1)
    key = models.CharField(max_length=500, help_text="name in private storage")
    multipart_id = models.CharField(max_length=1024, blank=True, help_text="S3 multipart UploadId")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    submission = models.OneToOneField(Submission, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="upload")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.status})"


class Board(models.Model):
    """A phase's materialized boards (the BoardRow rows): what board_refresh last wrote, and its version.

    Each refresh that changes a row bumps `version` and draws a new `stamp`: the cached renderings and
    the ETags are keyed by both, so a bump is the cache's explicit invalidation (the stamp keeps a key
    from meaning two things when a database is recreated under a cache that outlived it)."""

    phase = models.OneToOneField("challenges.Phase", primary_key=True, on_delete=models.CASCADE,
                                 related_name="board")
    version = models.PositiveBigIntegerField(default=0)
    stamp = models.CharField(max_length=32, blank=True)
    digest = models.CharField(max_length=64, blank=True, help_text="sha256 of the rows as last written")
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_seconds = models.FloatField(null=True, blank=True, help_text="how long the last rebuild took")

    def __str__(self) -> str:
        return f"boards of {self.phase} (version {self.version})"


class BoardRow(models.Model):
    """One row of one board (phase, split) as the ranking rules chose it, in board order by the primary
    metric (`position`, `rank`). Serving reads these and nothing else."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="board_rows")
    split = models.CharField(max_length=10, choices=SPLIT_CHOICES)
    position = models.PositiveIntegerField()
    rank = models.PositiveIntegerField(null=True, blank=True)
    submission = models.ForeignKey(Submission, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                   help_text="empty for a reported row")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    team_name = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=200)
    method_url = models.CharField(max_length=500, blank=True)
    code_url = models.CharField(max_length=500, blank=True)
    is_baseline = models.BooleanField(default=False)
    baseline = models.JSONField(null=True, blank=True, help_text="where a baseline row comes from")
    T_recall = models.FloatField(null=True, blank=True)
    IoU_all = models.FloatField(null=True, blank=True)
    IoU_gold = models.FloatField(null=True, blank=True)
    IoU_gold_pred = models.FloatField(null=True, blank=True)
    ci = models.JSONField(null=True, blank=True, help_text="the scores' 95% intervals, {metric: [low, high]}")
    tie_group = models.PositiveIntegerField(null=True, blank=True, help_text="the position of the first row of its "
                                            "group of statistically tied rows (None: no paired data)")
    n_expressions = models.PositiveIntegerField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    rescoring = models.BooleanField(default=False, help_text="being scored again: the scores shown are the previous "
                                    "attempt's until the new one finishes")
    flagged = models.BooleanField(default=False, help_text="flagged by the organizers: listed with a mark")

    class Meta:
        ordering = ["phase", "split", "position"]
        constraints = [models.UniqueConstraint(fields=["phase", "split", "position"], name="one_board_row_per_place")]

    def __str__(self) -> str:
        return f"{self.phase_id}/{self.split} #{self.position} {self.method}"


def _analysis_path(instance: Analysis, filename: str) -> str:
    return f"submissions/{instance.submission_id}/analysis/{filename}"


class Analysis(models.Model):
    """What the statistics and diagnostics need of a scored submission, beside its Score rows: the
    per-expression metrics (for paired tests and trait buckets), its results by trait bucket and its
    error types, and the per-frame timelines (a file: shown only where the phase allows details)."""

    submission = models.OneToOneField(Submission, primary_key=True, on_delete=models.CASCADE,
                                      related_name="analysis")
    gt_version = models.CharField(max_length=64)
    values = models.BinaryField(help_text="float64 array (4 metrics x expressions, in the ground truth's "
                                "order of expressions: GroundTruthBundle.traits), fractions in [0, 1]")
    by_trait = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=dict, blank=True)
    timelines = models.FileField(upload_to=_analysis_path, storage=private_storage, blank=True, max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"analysis of submission {self.submission_id}"


class BoardSnapshot(models.Model):
    """A citable copy of a phase's revealed boards as they were at `created_at`: the JSON document (`content`, the
    exact bytes served, whose sha256 is `sha256`) and the same rows as CSV, numbered 1, 2, ... per phase. Written once
    by snapshots.board_snapshot_take and never changed (save refuses an update; the admin shows them read only)."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="snapshots")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", help_text="empty: taken by the server (reveal, end of phase)")
    reason = models.TextField(blank=True)
    board_version = models.PositiveBigIntegerField(help_text="the boards' version (Board.version) it copies")
    rows_sha256 = models.CharField(max_length=64, help_text="sha256 of the boards' part of the document: an "
                                   "unchanged board makes no new snapshot")
    gt_versions = models.JSONField(default=list, blank=True, help_text="the ground-truth versions of its scores")
    scorer_versions = models.JSONField(default=list, blank=True, help_text="the scorer versions of its scores")
    content = models.TextField(help_text="the JSON document, exactly as served (UTF-8)")
    csv = models.TextField(help_text="the rows as CSV, exactly as served (UTF-8)")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the JSON document's bytes (its ETag)")

    class Meta:
        ordering = ["phase", "-number"]
        constraints = [models.UniqueConstraint(fields=["phase", "number"], name="one_snapshot_per_number")]

    def __str__(self) -> str:
        return f"snapshot {self.number} of {self.phase}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError(f"{self} is immutable: a board snapshot is written once and never changed.")
        super().save(*args, **kwargs)
