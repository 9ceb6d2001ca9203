"""Admin for organizers: submissions (a readable summary, downloads, moderation with a reason), their scores,
disqualifications, and the phase admin's rescore and board snapshot actions (its snapshots listed, read only).
Actions and buttons call the services (moderation.py, services.py, snapshots.py), which check the user's right
themselves; the pages are in admin_pages.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from leaderboard.adminkit import ChallengeScopedAdmin, ReadOnlyInline, allowed, apply_each, plural, reason_or_page
from leaderboard.challenges.admin import PhaseAdmin
from leaderboard.challenges.models import Phase
from leaderboard.accounts.models import Team
from leaderboard.challenges.permissions import Can, challenges_where, organizer_can
from leaderboard.errors import ApplicationError

from . import admin_pages
from .boards import boards_deferred
from .models import Disqualification, Score, ScoreHistory, Submission
from .moderation import team_disqualify, team_reinstate
from .rescoring import phase_set_ground_truth
from .selectors import standing_disqualification
from .services import phase_rescore
from .snapshots import board_snapshot_take, snapshot_list, snapshot_path

# The phase admin is challenges'; rescoring a phase is submissions' business, so the action is added
# here, to a subclass registered in its place (challenges must not depend on submissions).
admin.site.unregister(Phase)


@admin.register(Phase)
class PhaseWithRescoreAdmin(PhaseAdmin):
    actions = [*PhaseAdmin.actions, "rescore_all", "take_board_snapshot"]
    # The phase's snapshots are shown on its page, read only (a field, not an inline: nothing to post back).
    readonly_fields = [*PhaseAdmin.readonly_fields, "board_snapshots"]
    fieldsets = [*PhaseAdmin.fieldsets, ("Board snapshots", {"fields": ["board_snapshots"]})]

    @admin.display(description="snapshots")
    def board_snapshots(self, phase: Phase) -> str:
        """Each snapshot's number, date, reason and address (newest first); they are never changed or deleted."""
        if phase.pk is None:
            return "(none: the phase is new)"
        items = [(snapshot_path(phase=phase, number=s.number), s.number, f"{s.created_at:%Y-%m-%d %H:%M}",
                  s.sha256[:16], s.reason or "no reason given") for s in snapshot_list(phase=phase)]
        if not items:
            return "none yet (the action “Take a board snapshot”, or the server at the reveal and at the end)"
        rows = format_html_join("", '<li><a href="{}">snapshot {}</a> · {} UTC · sha256 {}… · {}</li>', items)
        return format_html("<ul>{}</ul>", rows)

    def has_configure_permission(self, request: HttpRequest) -> bool:
        """For actions with permissions=["configure"]; each phase is checked again by the service."""
        return self._may(request, Can.CONFIGURE, None)

    @admin.action(description="Take a board snapshot (citable, public)", permissions=["configure"])
    def take_board_snapshot(self, request: HttpRequest, queryset: QuerySet[Phase]) -> HttpResponse | None:
        reason = reason_or_page(self, request, queryset, "Take a board snapshot")
        if not isinstance(reason, str):
            return reason

        def take(phase: Phase) -> None:
            before = phase.snapshots.count()
            snapshot = board_snapshot_take(phase=phase, by=request.user, reason=reason)
            note = "" if phase.snapshots.count() > before else " (unchanged since: no new snapshot)"
            self.message_user(request, f"{phase}: snapshot {snapshot.number}{note}, sha256 {snapshot.sha256}.")

        apply_each(self, request, queryset.select_related("challenge").order_by("pk"), take,
                   lambda n: f"Board snapshots of {plural(n, 'phase')} taken.",
                   permitted=allowed(request, self, Can.CONFIGURE))
        return None

    @admin.action(description="Rescore all submissions", permissions=["moderate"])
    def rescore_all(self, request: HttpRequest, queryset: QuerySet[Phase]) -> HttpResponse | None:
        reason = reason_or_page(self, request, queryset, "Rescore all submissions")
        if not isinstance(reason, str):
            return reason
        total = 0
        for phase in queryset.select_related("challenge").order_by("pk"):
            if not organizer_can(request.user, phase.challenge_id, Can.MODERATE):
                self.message_user(request, f"{phase}: you do not organize its challenge with that right.",
                                  messages.ERROR)
                continue
            try:
                total += phase_rescore(phase=phase, by=request.user, reason=reason)
            except ApplicationError as exc:
                self.message_user(request, f"{phase}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{plural(total, 'submission')} of {plural(queryset.count(), 'phase')} "
                                   "queued for rescoring.", messages.SUCCESS)
        return None

    def save_model(self, request: HttpRequest, obj: Phase, form: forms.ModelForm, change: bool) -> None:
        # A new ground truth goes through phase_set_ground_truth (checks, rescore), as the commands do.
        if not change or "ground_truth" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        bundle = obj.ground_truth
        obj.ground_truth = Phase.objects.get(pk=obj.pk).ground_truth
        super().save_model(request, obj, form, change)
        try:
            switch = phase_set_ground_truth(phase=obj, bundle=bundle, by=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"The ground truth was not changed: {exc.message}", messages.ERROR)
            return
        if switch.changed:
            self.message_user(request, f"{plural(switch.rescored, 'submission')} queued for rescoring against the "
                                       "new ground truth; the boards keep their scores until the new ones are in.",
                              messages.SUCCESS)


def two_decimals(metric: str) -> Callable[[Any, Score], str]:
    """A read-only column of an inline showing a score with two decimals (the boards' precision)."""
    def shown(inline: Any, score: Score) -> str:
        value = getattr(score, metric)
        return "" if value is None else f"{value:.2f}"

    shown.short_description = metric  # type: ignore[attr-defined]
    return shown


class ScoreInline(ReadOnlyInline):
    model = Score
    fields = ["split", "t_recall", "iou_all", "iou_gold", "iou_gold_pred", "n_expressions", "scorer_version",
              "gt_version", "created_at"]
    t_recall, iou_all = two_decimals("T_recall"), two_decimals("IoU_all")
    iou_gold, iou_gold_pred = two_decimals("IoU_gold"), two_decimals("IoU_gold_pred")
    verbose_name, verbose_name_plural = "score", "scores (percent)"


def _moderation_action(what: str) -> Callable[..., HttpResponse | None]:
    """The list action of one moderation (admin_pages.MODERATIONS): asks for the reason, then calls its service
    for each selected submission."""
    moderation = admin_pages.MODERATIONS[what]

    def action(modeladmin: SubmissionAdmin, request: HttpRequest, queryset: QuerySet[Submission]) -> Any:
        reason = reason_or_page(modeladmin, request, queryset, moderation.label)
        if not isinstance(reason, str):
            return reason
        apply_each(modeladmin, request, queryset.order_by("pk"), lambda s: moderation.call(s, request.user, reason),
                   lambda n: f"{plural(n, 'submission')} {moderation.done}.",
                   permitted=allowed(request, modeladmin, Can.MODERATE))
        return None

    action.__name__ = what
    return admin.action(description=moderation.label, permissions=["moderate"])(action)


class ScoreHistoryInline(ReadOnlyInline):
    """Every score set the submission had (rescores included), newest first."""

    model = ScoreHistory
    verbose_name_plural = "score history"
    fields = ["scored_at", "attempt", "split", "T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred", "scorer_version",
              "gt_version"]
    ordering = ["-attempt", "id"]


@admin.register(Submission)
class SubmissionAdmin(ChallengeScopedAdmin):
    challenge_path = "phase__challenge"
    change_needs = Can.MODERATE
    add_needs = None  # submissions arrive through submission_create (site, API, CLI, seed_demo)
    delete_needs = None  # a host hides a submission; deleting one is for staff
    change_form_template = "admin/submissions/submission/change_form.html"
    list_display = ["id", "method_name", "entrant", "phase", "status", "primary_score", "attempt", "is_baseline",
                    "hidden", "flagged", "is_public", "submitted", "files"]
    list_display_links = ["id", "method_name"]
    list_filter = ["phase", "status", "is_baseline", "hidden", "flagged"]
    search_fields = ["method_name", "team__name"]
    list_select_related = ["phase__challenge", "team"]
    date_hierarchy = "submitted_at"
    inlines = [ScoreInline, ScoreHistoryInline]
    actions = [_moderation_action(what) for what in admin_pages.MODERATIONS]
    fieldsets = [
        ("Method (shown on the boards)", {"fields": ["method_name", "method_description", "method_url", "code_url"]}),
        ("Entry", {"fields": ["phase", "team", "user", "is_baseline", "is_public", "hidden", "hidden_reason",
                              "flagged", "flag_reason"]}),
        ("Scoring", {"fields": ["status", "attempt", "failure_kind", "failure_message", "scorer_version",
                                "gt_version"]}),
        ("Workers (for organizers)", {"fields": ["retry_reason", "lost_workers", "lease_expires_at", "unsent"],
                                      "classes": ["collapse"]}),
        ("Files (private storage)", {"fields": ["stored_file", "file_sha256", "file_size", "stored_details"]}),
    ]
    readonly_fields = ["phase", "team", "user", "is_baseline", "is_public", "hidden", "hidden_reason", "flagged",
                       "flag_reason", "status", "attempt", "failure_message", "scorer_version", "gt_version",
                       "stored_file", "file_sha256", "file_size", "stored_details", "failure_kind", "retry_reason",
                       "lost_workers", "lease_expires_at", "unsent"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Submission]:
        overall = Score.objects.filter(split="overall")
        return super().get_queryset(request).prefetch_related(Prefetch("scores", queryset=overall,
                                                                       to_attr="overall_scores"))

    def get_urls(self) -> list:
        page = self.admin_site.admin_view
        return [
            path("<int:object_id>/download/upload.zip", page(self._download("upload")),
                 name="submissions_submission_download_upload"),
            path("<int:object_id>/download/per-expression.csv", page(self._download("details")),
                 name="submissions_submission_download_details"),
            path("<int:object_id>/moderate/<slug:what>/", page(self._moderate),
                 name="submissions_submission_moderate"),
            *super().get_urls(),
        ]

    def _visible(self, request: HttpRequest, object_id: int) -> Submission:
        """A submission the user may VIEW (the queryset is scoped by the permission rule), else 404."""
        found = super().get_queryset(request).select_related("phase__challenge", "team").filter(pk=object_id).first()
        if found is None or not organizer_can(request.user, found.phase.challenge_id, Can.VIEW):
            raise Http404("No such submission.")
        return found

    def _download(self, kind: str) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, object_id: int) -> HttpResponse:
            return admin_pages.download(request, self._visible(request, object_id), kind)
        return view

    def _moderate(self, request: HttpRequest, object_id: int, what: str) -> HttpResponse:
        return admin_pages.moderate(request, self._visible(request, object_id), what)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        submission = self.get_queryset(request).select_related("phase__challenge", "team").filter(
            pk=object_id).first() if object_id.isdigit() else None
        if submission is not None:
            extra_context = {**(extra_context or {}), "summary": admin_pages.summary(submission),
                             "sub": submission, "may_moderate": organizer_can(
                                 request.user, submission.phase.challenge_id, Can.MODERATE)}
        return super().change_view(request, object_id, form_url, extra_context)

    def response_action(self, request: HttpRequest, queryset: QuerySet[Submission]):  # type: ignore[no-untyped-def]
        with boards_deferred():  # an action on many submissions (hide, delete...) rebuilds each board once
            return super().response_action(request, queryset)

    @admin.display(description="team")
    def entrant(self, submission: Submission) -> str:
        return submission.team.name if submission.team else "baseline" if submission.is_baseline else "-"

    @admin.display(description="overall (primary metric)")
    def primary_score(self, submission: Submission) -> str:
        scores = getattr(submission, "overall_scores", None) or []
        return f"{getattr(scores[0], submission.phase.primary_metric):.2f}" if scores else ""

    @admin.display(description="submitted", ordering="submitted_at")
    def submitted(self, submission: Submission) -> str:
        return f"{submission.submitted_at:%Y-%m-%d %H:%M} UTC"

    @admin.display(description="files")
    def files(self, submission: Submission) -> str:
        upload = reverse("admin:submissions_submission_download_upload", args=[submission.pk])
        if not submission.details:
            return format_html('<a href="{}">zip</a>', upload)
        details = reverse("admin:submissions_submission_download_details", args=[submission.pk])
        return format_html('<a href="{}">zip</a> · <a href="{}">CSV</a>', upload, details)

    @admin.display(description="file")
    def stored_file(self, submission: Submission) -> str:
        url = reverse("admin:submissions_submission_download_upload", args=[submission.pk])
        return format_html('<a href="{}">download the zip</a> <span class="quiet">{}</span>', url,
                           submission.file.name)

    @admin.display(description="per-expression results")
    def stored_details(self, submission: Submission) -> str:
        if not submission.details:
            return ""
        url = reverse("admin:submissions_submission_download_details", args=[submission.pk])
        return format_html('<a href="{}">download the CSV</a>', url)


class DisqualificationForm(forms.ModelForm):
    """A new disqualification: the phase, the team and the reason the team is told."""

    class Meta:
        model = Disqualification
        fields = ["phase", "team", "reason"]

    def clean(self) -> dict[str, Any]:
        # What team_disqualify would refuse, said on the form, next to the field.
        data = super().clean()
        phase, team = data.get("phase"), data.get("team")
        if phase is not None and team is not None:
            if team.challenge_id != phase.challenge_id:
                self.add_error("team", f"The team {team.name!r} is not in the challenge of {phase}.")
            elif standing_disqualification(phase=phase, team=team) is not None:
                self.add_error("team", f"The team {team.name!r} is already disqualified from {phase}.")
        return data


@admin.register(Disqualification)
class DisqualificationAdmin(ChallengeScopedAdmin):
    """Disqualifications: added here (team_disqualify) and lifted with the list action (team_reinstate), both
    with a reason; never edited or deleted, so the record stays."""

    challenge_path = "phase__challenge"
    change_needs = Can.MODERATE
    add_needs = Can.MODERATE
    delete_needs = None
    form = DisqualificationForm
    list_display = ["team", "phase", "reason", "by", "at", "standing", "lifted_by", "lifted_at", "lift_reason"]
    list_filter = ["phase", ("lifted_at", admin.EmptyFieldListFilter)]
    list_select_related = ["team", "phase__challenge", "by", "lifted_by"]
    search_fields = ["team__name", "reason"]
    actions = ["reinstate"]
    readonly_fields = ["phase", "team", "reason", "by", "at", "lifted_at", "lifted_by", "lift_reason"]

    def get_readonly_fields(self, request: HttpRequest, obj: Disqualification | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Disqualification | None = None) -> list[str]:
        return ["phase", "team", "reason"] if obj is None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        # A host disqualifies in the challenges they moderate only.
        if db_field.name == "phase" and not request.user.is_staff:
            kwargs["queryset"] = Phase.objects.filter(challenge__in=challenges_where(request.user, Can.MODERATE))
        if db_field.name == "team" and not request.user.is_staff:
            kwargs["queryset"] = Team.objects.filter(challenge__in=challenges_where(request.user, Can.MODERATE))
        return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a disqualification is lifted (the action), not edited

    @admin.display(boolean=True, description="standing")
    def standing(self, disqualification: Disqualification) -> bool:
        return disqualification.is_standing

    def save_model(self, request: HttpRequest, obj: Disqualification, form: forms.ModelForm, change: bool) -> None:
        saved = team_disqualify(phase=obj.phase, team=obj.team, by=request.user, reason=obj.reason)
        obj.pk, obj.by, obj.at = saved.pk, saved.by, saved.at

    @admin.action(description="Lift (reinstate the team)", permissions=["moderate"])
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Disqualification]) -> HttpResponse | None:
        reason = reason_or_page(self, request, queryset, "Lift the disqualification")
        if not isinstance(reason, str):
            return reason
        apply_each(self, request, queryset.filter(lifted_at__isnull=True).order_by("pk"),
                   lambda d: team_reinstate(disqualification=d, by=request.user, reason=reason),
                   lambda n: f"{plural(n, 'team')} reinstated.", permitted=allowed(request, self, Can.MODERATE))
        return None
