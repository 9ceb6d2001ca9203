"""Admin for organizers: challenges, phases and ground truth. Actions parse the selection and call services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from leaderboard.adminkit import plural

from .models import Challenge, GroundTruthBundle, Phase
from .services import ground_truth_create, ground_truth_request_check, phase_ensure_splits


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0
    show_change_link = True
    fields = ["slug", "name", "order", "starts_at", "ends_at", "accepts_submissions", "visibility", "reveal_at",
              "ranking_rule", "ground_truth"]


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "is_published", "created_at"]
    search_fields = ["slug", "title"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [PhaseInline]

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is Phase:
            for phase in formset.new_objects:
                phase_ensure_splits(phase=phase)


@admin.register(Phase)
class PhaseAdmin(admin.ModelAdmin):
    list_display = ["name", "challenge", "starts_at", "ends_at", "is_open", "visibility", "reveal_at",
                    "ranking_rule", "primary_metric", "ground_truth"]
    list_filter = ["challenge", "visibility", "ranking_rule"]
    list_select_related = ["challenge", "ground_truth"]
    search_fields = ["slug", "name", "challenge__slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["boards", "created_at"]
    fieldsets = [
        (None, {"fields": ["challenge", "slug", "name", "description", "order"]}),
        ("Submissions", {"fields": ["starts_at", "ends_at", "accepts_submissions", "max_per_day", "max_total"]}),
        ("Leaderboard", {"fields": ["visibility", "reveal_at", "ranking_rule", "primary_metric",
                                    "show_expression_details", "boards"]}),
        ("Scoring", {"fields": ["ground_truth", "created_at"]}),
    ]
    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        # Only bundles a worker has checked can be attached; scoring against an unchecked one would fail.
        if db_field.name == "ground_truth":
            kwargs["queryset"] = GroundTruthBundle.objects.filter(status=GroundTruthBundle.Status.READY)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

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
class GroundTruthBundleAdmin(admin.ModelAdmin):
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

    @admin.action(description="Check again (on a worker)")
    def check_again(self, request: HttpRequest, queryset: QuerySet[GroundTruthBundle]) -> None:
        for bundle in queryset.order_by("pk"):
            ground_truth_request_check(bundle=bundle)
        self.message_user(request, f"Queued a check of {plural(queryset.count(), 'bundle')}; a worker records "
                          "the result here (status, version, summary).", messages.SUCCESS)
