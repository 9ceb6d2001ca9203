"""Admin for organizers: challenges, phases and ground truth. Actions parse the selection and call services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from leaderboard.adminkit import ChallengeInline, ChallengeScopedAdmin, allowed, apply_each, plural

from .models import Challenge, GroundTruthBundle, Host, Phase
from .permissions import Can, challenges_where, forget_roles
from .services import ground_truth_create, ground_truth_request_check, phase_ensure_splits


class PhaseInline(ChallengeInline):
    model = Phase
    show_change_link = True
    fields = ["slug", "name", "order", "starts_at", "ends_at", "accepts_submissions", "visibility", "reveal_at",
              "ranking_rule", "ground_truth"]


class HostForm(forms.ModelForm):
    # A username typed in, not a list of every account of the site (a host is not shown the others).
    user = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True), to_field_name="username",
                                  widget=forms.TextInput, help_text="the user's username",
                                  error_messages={"invalid_choice": "No active user has this username."})

    class Meta:
        model = Host
        fields = ["user", "role"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # shown by username, as typed (the model's initial value is the user's id)
            self.initial["user"] = self.instance.user.get_username()


class HostInline(ChallengeInline):
    """Who runs the challenge: its owners choose (Can.MANAGE_HOSTS)."""

    model = Host
    form = HostForm
    needs = Can.MANAGE_HOSTS
    fields = ["user", "role", "added_by", "added_at"]
    readonly_fields = ["added_by", "added_at"]


@admin.register(Challenge)
class ChallengeAdmin(ChallengeScopedAdmin):
    challenge_path = ""
    delete_needs = None  # staff only, as adding (below)
    list_display = ["slug", "title", "is_published", "created_at"]
    search_fields = ["slug", "title"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [HostInline, PhaseInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff  # a new challenge has no hosts yet: staff make it and name its owner

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is Host:
            for host in formset.save(commit=False):
                host.added_by = host.added_by or request.user
            forget_roles(request.user)
        super().save_formset(request, form, formset, change)
        if formset.model is Phase:
            for phase in formset.new_objects:
                phase_ensure_splits(phase=phase)


@admin.register(Phase)
class PhaseAdmin(ChallengeScopedAdmin):
    list_display = ["name", "challenge", "starts_at", "ends_at", "is_open", "visibility", "reveal_at",
                    "ranking_rule", "primary_metric", "ground_truth"]
    list_filter = ["challenge", "visibility", "ranking_rule"]
    list_select_related = ["challenge", "ground_truth"]
    search_fields = ["slug", "name", "challenge__slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["boards", "created_at"]
    fieldsets = [
        (None, {"fields": ["challenge", "slug", "name", "description", "order"]}),
        ("Submissions", {"fields": ["starts_at", "ends_at", "accepts_submissions", "max_per_day", "max_total",
                                    "quota_counts_failed"]}),
        ("Leaderboard", {"fields": ["visibility", "reveal_at", "ranking_rule", "primary_metric",
                                    "show_expression_details", "boards"]}),
        ("The Ladder", {"fields": ["ladder", "ladder_step"],
                        "description": "While the phase runs (until its end), teams and the boards see each team's "
                        "Ladder score instead of exact scores (docs/organizers.md)."}),
        ("Statistics", {"fields": ["bootstrap_samples", "tie_level", "min_bucket_size"]}),
        ("Scoring", {"fields": ["ground_truth", "created_at"]}),
    ]
    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        # Only bundles a worker has checked can be attached; scoring against an unchecked one would fail.
        # (A bundle of another challenge is refused by the phase's own check, whoever picks it.)
        if db_field.name == "ground_truth":
            kwargs["queryset"] = GroundTruthBundle.objects.filter(status=GroundTruthBundle.Status.READY,
                                                                  challenge__in=self._configurable(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _configurable(self, request: HttpRequest) -> QuerySet[Challenge]:
        return challenges_where(request.user, Can.CONFIGURE)

    @admin.display(boolean=True, description="open")
    def is_open(self, phase: Phase) -> bool:
        return phase.is_open()

    @admin.display(description="boards")
    def boards(self, phase: Phase) -> str:
        return ", ".join(split.code for split in phase.splits.all()) or "(created when the phase is saved)"

    def save_model(self, request: HttpRequest, obj: Phase, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            phase_ensure_splits(phase=obj)


class GroundTruthUploadForm(forms.ModelForm):
    """The add form: a zip goes through ground_truth_create, which stores it and queues the check."""

    class Meta:
        model = GroundTruthBundle
        fields = ["challenge", "name", "file"]
        help_texts = {"file": "A zip of the published EgoMask layout (meta_expressions.json, subset/, annotations/). "
                              "A worker checks it after upload; reload this page to see the result."}


@admin.register(GroundTruthBundle)
class GroundTruthBundleAdmin(ChallengeScopedAdmin):
    list_display = ["name", "challenge", "status", "short_version", "created_at"]
    list_filter = ["status", "challenge"]
    search_fields = ["name", "version", "sha256"]
    actions = ["check_again"]
    readonly_fields = ["challenge", "stored_file", "sha256", "version", "status", "message", "contents",
                       "created_at"]

    def get_form(self, request: HttpRequest, obj: GroundTruthBundle | None = None, change: bool = False,
                 **kwargs: Any) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = GroundTruthUploadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: GroundTruthBundle | None = None) -> list[str]:
        if obj is None:
            return ["challenge", "name", "file"]
        return ["name", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: GroundTruthBundle | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: GroundTruthBundle, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)  # only the name is editable
            return
        upload = form.cleaned_data["file"]
        bundle = ground_truth_create(challenge=form.cleaned_data["challenge"], name=form.cleaned_data["name"],
                                     file=upload, filename=upload.name.rsplit("/", 1)[-1] or "ground-truth.zip")
        # The admin goes on with `obj` (logging, redirect): make it the stored row.
        obj.pk = bundle.pk
        obj.refresh_from_db()

    @admin.display(description="version")
    def short_version(self, bundle: GroundTruthBundle) -> str:
        return bundle.version[:12]

    @admin.display(description="file")
    def stored_file(self, bundle: GroundTruthBundle) -> str:
        return bundle.file.name  # private storage: a name, not a link

    @admin.display(description="summary")
    def contents(self, bundle: GroundTruthBundle) -> str:
        return "; ".join(f"{split}: {item.get('videos', '?')} videos / {item.get('expressions', '?')} expressions"
                         for split, item in (bundle.summary or {}).items())

    @admin.action(description="Check again (on a worker)", permissions=["change"])
    def check_again(self, request: HttpRequest, queryset: QuerySet[GroundTruthBundle]) -> None:
        apply_each(self, request, queryset.order_by("pk"), lambda bundle: ground_truth_request_check(bundle=bundle),
                   lambda n: f"Queued a check of {plural(n, 'bundle')}; a worker records the result here "
                             "(status, version, summary).", permitted=allowed(request, self, Can.CONFIGURE))
