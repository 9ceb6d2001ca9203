"""Small pieces shared by the apps' admin modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from leaderboard.challenges.models import Challenge, Phase
from leaderboard.challenges.permissions import Can, challenges_where, organizer_can
from leaderboard.errors import ApplicationError


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def apply_each(modeladmin: admin.ModelAdmin, request: HttpRequest, objects: Iterable[Model],
               call: Callable[[Any], object], done: Callable[[int], str],
               permitted: Callable[[Model], bool] | None = None) -> int:
    """Call a service for each selected object; report how many it worked for and why it refused the rest
    (`permitted`: whether the user may act on that object, see `allowed`)."""
    count = 0
    for obj in objects:
        if permitted is not None and not permitted(obj):
            modeladmin.message_user(request, f"{obj}: you do not organize its challenge with that right.",
                                    messages.ERROR)
            continue
        try:
            call(obj)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        else:
            count += 1
    modeladmin.message_user(request, done(count), messages.SUCCESS if count else messages.WARNING)
    return count


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows rows and changes nothing: the rows are written by services."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.fields or [])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # whoever may view the parent row (its admin decided) sees these


class ChallengeInline(admin.TabularInline):
    """An inline of a challenge's own rows (its phases, its hosts): shown to whoever may view the challenge,
    editable by whoever the challenge grants `needs`."""

    extra = 0
    needs = Can.CONFIGURE

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or organizer_can(request.user, obj.pk, Can.VIEW)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and organizer_can(request.user, obj.pk, self.needs)

    has_add_permission = has_delete_permission = has_change_permission


class ReasonForm(forms.Form):
    """The reason an organizer gives for a moderation (recorded in the audit log; the team may see it)."""

    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
                             help_text="Recorded in the audit log; the team sees it for a hide, a flag or a "
                                       "disqualification.")


def reason_or_page(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet,
                   title: str) -> str | HttpResponse:
    """For a list action that needs a reason: the reason POSTed with it, or the page that asks for one (it posts
    the action again with the same selection and the reason)."""
    form = ReasonForm(request.POST if "apply_reason" in request.POST else None)
    if form.is_valid():
        return form.cleaned_data["reason"]
    context = {**modeladmin.admin_site.each_context(request), "title": title, "form": form,
               "objects": list(queryset), "action": request.POST.get("action", ""),
               "opts": modeladmin.model._meta, "select_across": request.POST.get("select_across", "0")}
    return TemplateResponse(request, "admin/reason_action.html", context)


class ScopedHistoryAdmin(SimpleHistoryAdmin):
    """simple-history's history page (who changed what, when, why: old → new) for the rows a user may view,
    read only: no page of a past version (its form would save it, bypassing the services)."""

    object_history_list_template = "admin/history_list.html"
    # Links typed without a scheme are https (Django 6's default, asked for now: no deprecation warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_urls(self) -> list:
        return admin.ModelAdmin.get_urls(self)  # without simple-history's revert form

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        if not hasattr(self.model, "history"):  # a model the audit log does not follow: Django's own page
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        if not self.get_queryset(request).filter(pk=unquote(object_id)).exists():
            # As Django answers for a row one may not see: it does not exist (simple-history would show the
            # history of a row outside the user's challenges).
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        return super().history_view(request, object_id, extra_context)


class ChallengeScopedAdmin(ScopedHistoryAdmin):
    """A model admin whose rows belong to a challenge: a host sees the rows of the challenges they may VIEW
    and changes those where their role grants `change_needs`; staff see all. Every question goes to
    leaderboard.challenges.permissions (the one rule); actions that moderate declare permissions=["moderate"].

    challenge_path  the lookup from the model to its challenge ("challenge", "phase__challenge"; "" for
                    the Challenge itself)
    """

    challenge_path = "challenge"
    change_needs = Can.CONFIGURE
    add_needs: Can | None = Can.CONFIGURE  # None: nobody adds by hand
    delete_needs: Can | None = Can.CONFIGURE  # None: staff only

    def challenge_of(self, obj: Model) -> int | None:
        """The id of the challenge an object belongs to."""
        if not self.challenge_path:
            return obj.pk
        *hops, last = self.challenge_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop, None)
            if obj is None:
                return None
        return getattr(obj, f"{last}_id", None)

    def _may(self, request: HttpRequest, what: Can, obj: Any) -> bool:
        if obj is None:
            return challenges_where(request.user, what).exists()
        return organizer_can(request.user, self.challenge_of(obj), what)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        rows = super().get_queryset(request)
        if request.user.is_staff:
            return rows
        visible = challenges_where(request.user, Can.VIEW)
        return rows.filter(**{f"{self.challenge_path}__in" if self.challenge_path else "pk__in": visible})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may(request, Can.VIEW, None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, Can.VIEW, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.change_needs, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.delete_needs is None:
            return request.user.is_staff
        return self._may(request, self.delete_needs, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.add_needs is not None and self._may(request, self.add_needs, None)

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        """For actions with permissions=["moderate"]; each object is checked again where the action runs."""
        return self._may(request, Can.MODERATE, None)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        # A host files new rows under the challenges they configure, never under another one.
        if not request.user.is_staff:
            mine = challenges_where(request.user, Can.CONFIGURE)
            if db_field.related_model is Challenge:
                kwargs["queryset"] = mine
            elif db_field.related_model is Phase:
                kwargs["queryset"] = Phase.objects.filter(challenge__in=mine)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def allowed(request: HttpRequest, modeladmin: ChallengeScopedAdmin, what: Can) -> Callable[[Model], bool]:
    """For apply_each: whether the user may do `what` on the challenge of one selected object."""
    return lambda obj: organizer_can(request.user, modeladmin.challenge_of(obj), what)
