"""Health endpoints, the public status of a challenge's queue, and the Prometheus scrape."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck, HealthCheckResult
from health_check.views import HealthCheckView, MediaType
from prometheus_client import CONTENT_TYPE_LATEST

from leaderboard.webkit import challenge_or_404

from .access import has_metrics_token, is_operator
from .health import check_name, configured_checks
from .metrics import metrics_text
from .middleware import liveness_response
from .models import WorkerHeartbeat
from .selectors import challenge_queue_status, live_workers


def liveness(request: HttpRequest) -> HttpResponse:
    """/health/live/: LivenessMiddleware answers first; this is the same answer, for the URL map."""
    return liveness_response()


def _wants_json(request: HttpRequest) -> bool:
    if request.GET.get("format") == "json":
        return True
    for media in MediaType.parse_header(request.headers.get("Accept", "*/*") or "*/*"):
        if media.mime_type in {"application/json", "application/*"}:
            return True
        if media.mime_type in {"text/html", "application/xhtml+xml", "text/*", "*/*"}:
            return False
    return False


class HealthView(HealthCheckView):
    """/health/: every check (database, cache, broker, private storage, a live consumer per required queue).

    200 when all pass, 503 when one fails. HTML for people, JSON for machines (`?format=json` or
    `Accept: application/json`). Everyone sees which checks pass; operators (access.is_operator) also see
    the messages, the timings and the workers' heartbeats, which name internal hosts."""

    template_name = "ops/health.html"

    def get_checks(self):  # type: ignore[no-untyped-def]
        self.checks = configured_checks()  # read per request: the settings name the required queues
        return super().get_checks()

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.GET.get("format") not in {None, "json", "html"}:
            raise Http404("This page is HTML or JSON (?format=json).")
        with self.get_executor() as executor:
            self.results: list[HealthCheckResult] = list(
                await asyncio.gather(*(check.get_result(executor) for check in self.get_checks())))
        operator = is_operator(request=request, user=await request.auser())
        workers = await sync_to_async(_worker_rows)() if operator else None
        healthy = not any(result.error for result in self.results)
        report = {"status": "ok" if healthy else "unhealthy",
                  "checks": [_check_row(result, detail=operator) for result in self.results]}
        if workers is not None:
            report["workers"] = workers
        status = 200 if healthy else 503
        if _wants_json(request):
            return JsonResponse(report, status=status)
        # The page's context processors read the session and the user: synchronous database work.
        return await sync_to_async(render)(request, self.template_name, {"report": report, "operator": operator},
                                           status=status)


def _check_row(result: HealthCheckResult, *, detail: bool) -> dict[str, object]:
    check: HealthCheck = result.check
    row: dict[str, object] = {"name": check_name(check), "ok": result.error is None}
    if detail:
        row["message"] = "" if result.error is None else str(result.error)
        row["seconds"] = round(result.time_taken, 3)
    return row


def _worker_rows() -> list[dict[str, object]]:
    live = {worker.pk for worker in live_workers()}
    return [{"hostname": w.hostname, "pid": w.pid, "queues": w.queues, "concurrency": w.concurrency,
             "version": w.version, "started_at": w.started_at.isoformat(), "last_seen_at": w.last_seen_at.isoformat(),
             "live": w.pk in live} for w in WorkerHeartbeat.objects.order_by("hostname")]


health = never_cache(HealthView.as_view())


@never_cache
def challenge_status(request: HttpRequest, slug: str, as_json: bool = False) -> HttpResponse:
    """/challenges/<slug>/status/ (and status.json): the queue of the challenge's phases, counts only."""
    challenge = challenge_or_404(request, slug)
    status = challenge_queue_status(challenge=challenge)
    if as_json or request.GET.get("format") == "json":
        return JsonResponse({"challenge": challenge.slug, **status.as_dict()})
    return render(request, "ops/challenge_status.html", {"challenge": challenge, "status": status})


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """/metrics: Prometheus's scrape, for `Authorization: Bearer <METRICS_TOKEN>` only; without a token set the
    address does not exist."""
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off (METRICS_TOKEN is not set).")
    if not has_metrics_token(request):
        response = HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401,
                                content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
