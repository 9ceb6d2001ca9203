"""Admin for organizers: write an announcement (the add form) and send it (the "send" action, once).

Who may write to a challenge is notifications.services' rule (organizer_can ... MODERATE): the add form
offers only those challenges, and the services refuse the rest.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from leaderboard.adminkit import ChallengeScopedAdmin, ReadOnlyInline, allowed, apply_each, plural
from leaderboard.challenges.permissions import Can, challenges_where
from leaderboard.errors import ApplicationError

from . import services
from .models import Announcement, Delivery


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["to", "user", "sent_at"]
    verbose_name_plural = "mails sent"


class AnnouncementForm(forms.ModelForm):
    user: Any = None  # set by AnnouncementAdmin.get_form

    class Meta:
        model = Announcement
        fields = ["challenge", "subject", "body"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("challenge") and data.get("subject") and data.get("body"):
            try:
                services.announcement_check(challenge=data["challenge"], user=self.user, subject=data["subject"],
                                            body=data["body"])
            except ApplicationError as exc:
                self.add_error(exc.detail.get("field") if exc.detail.get("field") in self.fields else None,
                               exc.message)
        return data


@admin.register(Announcement)
class AnnouncementAdmin(ChallengeScopedAdmin):
    # Announcing is moderation (permissions.Can): a challenge's viewers read its announcements, no more.
    change_needs = add_needs = delete_needs = Can.MODERATE
    form = AnnouncementForm
    list_display = ["subject", "challenge", "created_by", "created_at", "queued_at", "sent_at", "recipients",
                    "sent_count", "opted_out"]
    list_filter = ["challenge"]
    search_fields = ["subject"]
    list_select_related = ["challenge", "created_by"]
    actions = ["send"]

    def get_inlines(self, request: HttpRequest, obj: Announcement | None = None) -> list[type]:
        return [DeliveryInline] if obj is not None else []  # who got it, once there is something to show

    def get_readonly_fields(self, request: HttpRequest, obj: Announcement | None = None) -> list[str]:
        counts = ["created_by", "created_at", "queued_at", "sent_at", "recipients", "sent_count", "opted_out"]
        if obj is None:
            return []
        # An announcement is a record of what was said: its text does not change once written.
        return ["challenge", "subject", "body", *counts]

    def get_fields(self, request: HttpRequest, obj: Announcement | None = None) -> list[str]:
        return ["challenge", "subject", "body"] if obj is None else [*self.get_readonly_fields(request, obj)]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "challenge":  # the challenges this user may write to (not those they configure)
            kwargs["queryset"] = challenges_where(request.user, Can.MODERATE)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Announcement | None = None, change: bool = False,
                 **kwargs: Any) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request: HttpRequest, obj: Announcement, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # nothing on a written announcement is editable (get_readonly_fields)
        # The form checked it with the same service (AnnouncementForm.clean).
        created = services.announcement_create(challenge=obj.challenge, user=request.user, subject=obj.subject,
                                               body=obj.body)
        obj.pk, obj.created_by, obj.created_at = created.pk, created.created_by, created.created_at
        obj._state.adding = False
        self.message_user(request, "Written, not sent yet: select it in the list and choose “Send to the "
                                   "challenge's participants”.", messages.INFO)

    def has_delete_permission(self, request: HttpRequest, obj: Announcement | None = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.queued_at is None)

    @admin.action(description="Send to the challenge's participants", permissions=["moderate"])
    def send(self, request: HttpRequest, queryset: QuerySet[Announcement]) -> None:
        apply_each(self, request, queryset.select_related("challenge").order_by("pk"),
                   lambda a: services.announcement_send(announcement=a, user=request.user),
                   lambda n: f"{plural(n, 'announcement')} queued; a worker on the maintenance queue mails them.",
                   permitted=allowed(request, self, Can.MODERATE))
