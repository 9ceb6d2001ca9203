"""The page of a baseline run: what produced a runner's row on the board (runner, version, options,
weights, shards, speed), for anyone who may see its submission."""

from __future__ import annotations

from pathlib import PurePath

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from leaderboard.challenges.permissions import Can, organizer_can

from . import selectors
from .models import BaselineRun


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = (BaselineRun.objects.select_related("phase__challenge", "submission").prefetch_related("shard_runs")
           .filter(pk=run_id).first())
    if run is None or not selectors.run_visible(run=run, viewer=request.user):
        raise Http404("No such baseline run.")  # existence does not leak for a private board
    return render(request, "baselines/run.html", {
        "run": run, "phase": run.phase, "challenge": run.phase.challenge,
        "progress": selectors.run_progress(run=run), "shards": list(run.shard_runs.all()),
        # Worker paths, host names and error texts are the organizers'; the public sees the weights' folder name.
        "organizer": organizer_can(request.user, run.phase.challenge_id, Can.VIEW),
        "weights_name": PurePath(run.weights_path).name if run.weights_path else "",
    })
