"""Baseline runs (a reference runner on a phase's public inputs, in shards) and reported results
(numbers quoted from a paper, never reproduced here)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class BaselineRun(models.Model):
    """One run of a reference runner on a phase: its settings, its shards, and the submission it made.

    queued → running (a shard started) → assembling (all shards done: zipping) → submitted (the zip
    is a baseline submission, being scored) → finished (scored); failed at any step, with why.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        ASSEMBLING = "assembling"
        SUBMITTED = "submitted"
        FINISHED = "finished"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.ASSEMBLING)

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="baseline_runs")
    runner = models.CharField(max_length=64, help_text="scoring.runners name; runs of one name replace each other")
    runner_version = models.CharField(max_length=32)
    options = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=16)
    weights_path = models.CharField(max_length=500, blank=True, help_text="on the workers; empty: weight-free")
    weights_sha256 = models.CharField(max_length=64, blank=True,
                                      help_text="sha256 of the weights folder's config files, from the workers")
    shards = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                             help_text="the organizer who queued it; the submission is theirs")
    submission = models.OneToOneField("submissions.Submission", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="baseline_run")
    gt_version = models.CharField(max_length=64, blank=True, help_text="the ground truth whose inputs it ran on")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phase", "runner", "status"])]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.runner} {self.runner_version}"

    @property
    def method_name(self) -> str:
        """The name its submission carries on the boards."""
        return f"{self.runner} (reference runner)"


class ShardRun(models.Model):
    """One shard of a run: claimed by one worker at a time under a lease, its progress written as it goes."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    run = models.ForeignKey(BaselineRun, on_delete=models.CASCADE, related_name="shard_runs")
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    lease = models.CharField(max_length=64, blank=True, help_text="the claim of the worker running it")
    lease_until = models.DateTimeField(null=True, blank=True)
    claims = models.PositiveIntegerField(default=0, help_text="how many times a worker took it (resumes)")
    hostname = models.CharField(max_length=255, blank=True)
    expressions_done = models.PositiveIntegerField(default=0)
    expressions_total = models.PositiveIntegerField(default=0)
    expressions_skipped = models.PositiveIntegerField(default=0, help_text="written by an earlier claim")
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(default=0)
    frames_per_second = models.FloatField(default=0.0, help_text="frame-expressions per second of model time")
    model_seconds = models.FloatField(default=0.0)
    seconds = models.FloatField(default=0.0, help_text="wall time of the last claim, loading included")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_shard_row_per_index")]

    def __str__(self) -> str:
        return f"{self.run} shard {self.index}/{self.run.shards}"


class ReportedResult(models.Model):
    """A published number for a method: shown on the boards, marked "reported (paper)", never ranked."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="reported_results")
    method = models.CharField(max_length=200)
    source_url = models.URLField(help_text="the paper or page the numbers come from")
    citation = models.CharField(max_length=300, blank=True)
    values = models.JSONField(default=dict, help_text='{split: {metric: percent}}: only what the source gives')
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["phase", "method"]
        constraints = [models.UniqueConstraint(fields=["phase", "method"], name="one_reported_row_per_method")]

    def __str__(self) -> str:
        return f"{self.method} (reported)"
