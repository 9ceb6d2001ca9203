"""Admin for organizers: baseline runs (progress per shard, run again, send again), reported results,
and the phase admin's action that queues the weight-free baselines. Actions call the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from leaderboard.adminkit import ChallengeScopedAdmin, ReadOnlyInline, allowed, apply_each, plural
from leaderboard.challenges.models import Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError
from leaderboard.submissions.admin import PhaseWithRescoreAdmin
from leaderboard.submissions.boards import boards_deferred
from scoring.runners import RUNNERS

from . import selectors
from .models import BaselineRun, ReportedResult, ShardRun
from .services import baseline_run_queue, baseline_run_resend

WEIGHT_FREE = [name for name, runner in RUNNERS.items() if not runner.needs_weights]

# The phase admin is registered by challenges and extended by submissions; queueing baselines is this
# app's business, so its action goes on a subclass registered in their place.
admin.site.unregister(Phase)


@admin.register(Phase)
class PhaseWithBaselinesAdmin(PhaseWithRescoreAdmin):
    actions = [*PhaseWithRescoreAdmin.actions, "run_weight_free_baselines"]

    @admin.action(description=f"Run the weight-free baselines ({', '.join(WEIGHT_FREE)})", permissions=["moderate"])
    def run_weight_free_baselines(self, request: HttpRequest, queryset: QuerySet[Phase]) -> None:
        queued = 0
        for phase in queryset.select_related("challenge", "ground_truth").order_by("pk"):
            if not organizer_can(request.user, phase.challenge_id, Can.MODERATE):
                self.message_user(request, f"{phase}: you do not organize its challenge with that right.",
                                  messages.ERROR)
                continue
            for name in WEIGHT_FREE:
                try:
                    baseline_run_queue(phase=phase, user=request.user, runner=name)
                except ApplicationError as exc:
                    self.message_user(request, f"{phase} / {name}: {exc.message}", messages.ERROR)
                else:
                    queued += 1
        self.message_user(request, f"{plural(queued, 'baseline run')} queued.",
                          messages.SUCCESS if queued else messages.WARNING)


class ShardInline(ReadOnlyInline):
    model = ShardRun
    fields = ["index", "status", "hostname", "expressions_done", "expressions_total", "expressions_skipped",
              "frames_done", "frames_total", "frames_per_second", "model_seconds", "seconds", "claims",
              "started_at", "updated_at", "finished_at", "error"]


@admin.register(BaselineRun)
class BaselineRunAdmin(ChallengeScopedAdmin):
    challenge_path = "phase__challenge"
    change_needs = delete_needs = Can.MODERATE
    add_needs = None  # runs are queued by `manage.py run_baseline` or the phase admin's action
    list_display = ["id", "runner", "runner_version", "phase", "status", "shards", "progress", "device",
                    "submission", "created_at"]
    list_filter = ["status", "runner", "phase"]
    list_select_related = ["phase__challenge", "submission"]
    inlines = [ShardInline]
    actions = ["run_again", "send_again"]
    readonly_fields = ["phase", "runner", "runner_version", "options", "device", "weights_path", "weights_sha256",
                       "shards", "status", "error", "user", "submission", "gt_version", "created_at", "started_at",
                       "finished_at"]

    def response_action(self, request: HttpRequest, queryset: QuerySet[BaselineRun]):  # type: ignore[no-untyped-def]
        with boards_deferred():  # deleting many runs rebuilds each board once
            return super().response_action(request, queryset)

    @admin.display(description="progress")
    def progress(self, run: BaselineRun) -> str:
        done = selectors.run_progress(run=run)
        if not done.expressions_total:
            return ""
        return (f"{done.expressions_done}/{done.expressions_total} expressions, "
                f"{done.frames_per_second:.1f} frames/s")

    @admin.action(description="Run again (a new run, same settings; it replaces this one once scored)",
                  permissions=["moderate"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[BaselineRun]) -> None:
        apply_each(self, request, queryset.select_related("phase").order_by("pk"),
                   lambda run: baseline_run_queue(phase=run.phase, user=request.user, runner=run.runner,
                                                  shards=run.shards, weights=run.weights_path or None,
                                                  options=run.options, device=run.device),
                   lambda n: f"{plural(n, 'baseline run')} queued again.",
                   permitted=allowed(request, self, Can.MODERATE))

    @admin.action(description="Send again (an unfinished run: lost tasks; started shards resume)",
                  permissions=["moderate"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[BaselineRun]) -> None:
        apply_each(self, request, queryset.select_related("phase").order_by("pk"),
                   lambda run: baseline_run_resend(run=run, user=request.user),
                   lambda n: f"{plural(n, 'baseline run')} sent again.",
                   permitted=allowed(request, self, Can.MODERATE))


@admin.register(ReportedResult)
class ReportedResultAdmin(ChallengeScopedAdmin):
    challenge_path = "phase__challenge"
    list_display = ["method", "phase", "reported", "source_url"]
    list_filter = ["phase"]
    search_fields = ["method"]

    def response_action(self, request: HttpRequest, queryset: QuerySet[ReportedResult]):  # type: ignore[no-untyped-def]
        with boards_deferred():  # deleting many rows rebuilds the board once
            return super().response_action(request, queryset)

    @admin.display(description="values")
    def reported(self, result: ReportedResult) -> str:
        return "; ".join(f"{split}: " + ", ".join(f"{m} {v:.2f}" for m, v in metrics.items())
                         for split, metrics in result.values.items())
