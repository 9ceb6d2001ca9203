"""Admin for organizers: submissions and their scores, and the phase admin's rescore action. Actions call
the submission services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest

from leaderboard.adminkit import ChallengeScopedAdmin, ReadOnlyInline, allowed, apply_each, plural
from leaderboard.challenges.admin import PhaseAdmin
from leaderboard.challenges.models import Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError

from .boards import boards_deferred
from .models import Score, Submission
from .services import phase_rescore, submission_rescore, submission_set_baseline, submission_set_hidden

# The phase admin is challenges'; rescoring a phase is submissions' business, so the action is added
# here, to a subclass registered in its place (challenges must not depend on submissions).
admin.site.unregister(Phase)


@admin.register(Phase)
class PhaseWithRescoreAdmin(PhaseAdmin):
    actions = [*PhaseAdmin.actions, "rescore_all"]

    @admin.action(description="Rescore all submissions", permissions=["moderate"])
    def rescore_all(self, request: HttpRequest, queryset: QuerySet[Phase]) -> None:
        total = 0
        for phase in queryset.select_related("challenge").order_by("pk"):
            if not organizer_can(request.user, phase.challenge_id, Can.MODERATE):
                self.message_user(request, f"{phase}: you do not organize its challenge with that right.",
                                  messages.ERROR)
                continue
            try:
                total += phase_rescore(phase=phase)
            except ApplicationError as exc:
                self.message_user(request, f"{phase}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{plural(total, 'submission')} of {plural(queryset.count(), 'phase')} "
                                   "queued for rescoring.", messages.SUCCESS)


class ScoreInline(ReadOnlyInline):
    model = Score
    fields = ["split", "T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred", "n_expressions", "scorer_version",
              "gt_version", "created_at"]


@admin.register(Submission)
class SubmissionAdmin(ChallengeScopedAdmin):
    challenge_path = "phase__challenge"
    change_needs = Can.MODERATE
    add_needs = None  # submissions arrive through submission_create (site, API, CLI, seed_demo)
    delete_needs = None  # a host hides a submission; deleting one is for staff
    list_display = ["id", "method_name", "entrant", "phase", "status", "primary_score", "attempt", "is_baseline",
                    "hidden", "is_public", "submitted_at"]
    list_display_links = ["id", "method_name"]
    list_filter = ["phase", "status", "is_baseline", "hidden"]
    search_fields = ["method_name", "team__name"]
    list_select_related = ["phase__challenge", "team"]
    date_hierarchy = "submitted_at"
    inlines = [ScoreInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["rescore", "hide", "show", "mark_baseline", "unmark_baseline"]
    fieldsets = [
        ("Method (shown on the boards)", {"fields": ["method_name", "method_description", "method_url", "code_url"]}),
        ("Entry", {"fields": ["phase", "team", "user", "is_baseline", "is_public", "hidden"]}),
        ("Scoring", {"fields": ["status", "attempt", "failure_kind", "failure_message", "problems", "warnings",
                                "scorer_version", "gt_version", "submitted_at", "started_at", "finished_at",
                                "scoring_seconds"]}),
        ("Workers (for organizers)", {"fields": ["retry_reason", "lost_workers", "lease_expires_at", "unsent",
                                                 "crash_report"], "classes": ["collapse"]}),
        ("Files (private storage)", {"fields": ["stored_file", "file_sha256", "file_size", "stored_details"]}),
    ]
    readonly_fields = ["phase", "team", "user", "is_baseline", "is_public", "hidden", "status", "attempt",
                       "failure_message", "problems", "warnings", "scorer_version", "gt_version", "submitted_at",
                       "started_at", "finished_at", "scoring_seconds", "stored_file", "file_sha256", "file_size",
                       "stored_details", "failure_kind", "retry_reason", "lost_workers", "lease_expires_at", "unsent",
                       "crash_report"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Submission]:
        overall = Score.objects.filter(split="overall")
        return super().get_queryset(request).prefetch_related(Prefetch("scores", queryset=overall,
                                                                       to_attr="overall_scores"))

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

    @admin.display(description="file")
    def stored_file(self, submission: Submission) -> str:
        return submission.file.name  # private storage: a name, not a link

    @admin.display(description="per-expression results")
    def stored_details(self, submission: Submission) -> str:
        return submission.details.name if submission.details else ""

    @admin.action(description="Rescore (new attempt)", permissions=["moderate"])
    def rescore(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        apply_each(self, request, queryset.order_by("pk"), lambda s: submission_rescore(submission=s),
                   lambda n: f"{plural(n, 'submission')} queued for rescoring.",
                   permitted=allowed(request, self, Can.MODERATE))

    @admin.action(description="Hide from leaderboards", permissions=["moderate"])
    def hide(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        apply_each(self, request, queryset.order_by("pk"), lambda s: submission_set_hidden(submission=s, hidden=True),
                   lambda n: f"{plural(n, 'submission')} hidden from the leaderboards.",
                   permitted=allowed(request, self, Can.MODERATE))

    @admin.action(description="Show on leaderboards", permissions=["moderate"])
    def show(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        apply_each(self, request, queryset.order_by("pk"), lambda s: submission_set_hidden(submission=s, hidden=False),
                   lambda n: f"{plural(n, 'submission')} shown on the leaderboards again.",
                   permitted=allowed(request, self, Can.MODERATE))

    @admin.action(description="Mark as baseline", permissions=["moderate"])
    def mark_baseline(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        apply_each(self, request, queryset.order_by("pk"),
                   lambda s: submission_set_baseline(submission=s, is_baseline=True),
                   lambda n: f"{plural(n, 'submission')} marked as baseline.",
                   permitted=allowed(request, self, Can.MODERATE))

    @admin.action(description="Unmark baseline", permissions=["moderate"])
    def unmark_baseline(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        apply_each(self, request, queryset.order_by("pk"),
                   lambda s: submission_set_baseline(submission=s, is_baseline=False),
                   lambda n: f"{plural(n, 'submission')} no longer marked as baseline.",
                   permitted=allowed(request, self, Can.MODERATE))
