"""What participants want mailed to them, organizers' announcements, and every mail sent (so that a
retried or redelivered task never sends one twice)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Preferences(models.Model):
    """A user's choices; a user without a row gets the defaults (both on)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="notification_preferences")
    submission_mails = models.BooleanField(default=True, help_text="a mail when my submission finishes or fails")
    announcement_mails = models.BooleanField(default=True,
                                             help_text="organizers' announcements of the challenges I take part in")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"notification preferences of {self.user}"


class Announcement(models.Model):
    """A message from a challenge's organizers to every member of its teams (one mail per recipient)."""

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="announcements")
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown; shown to recipients as sanitized HTML and as text")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when an organizer sent it")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="when its last mail went out")
    recipients = models.PositiveIntegerField(default=0, help_text="members who get it (opted-out ones excluded)")
    sent_count = models.PositiveIntegerField(default=0)
    opted_out = models.PositiveIntegerField(default=0, help_text="members who asked for no announcements")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.challenge.slug}: {self.subject}"


class Delivery(models.Model):
    """One mail to one person, keyed by what it is about: a key is sent at most once."""

    class Kind(models.TextChoices):
        SUBMISSION = "submission"
        ANNOUNCEMENT = "announcement"

    key = models.CharField(max_length=120, unique=True,
                           help_text="submission:<id>:<status> or announcement:<id>:user:<id>")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=250)
    announcement = models.ForeignKey(Announcement, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="deliveries")
    submission = models.ForeignKey("submissions.Submission", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.key} → {self.to}"
