"""The board's "by trait" page and the comparison page. What is shown, and to whom, is decided by the selectors of
comparisons.py; the charts (static/compare.js) are drawn from the same data the API serves, embedded in the page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from leaderboard.challenges.selectors import phase_boards
from leaderboard.errors import ApplicationError, NotFound
from leaderboard.webkit import phase_or_404, render_error
from scoring import METRICS

from . import comparisons
from .api_compare import by_trait_data, comparison_data

DEFAULT_TRAIT = "presence"


def leaderboard_by_trait(request: HttpRequest, slug: str, phase_slug: str, split: str) -> HttpResponse:
    """One board's rows by bucket of one trait (?trait=, ?metric=): a chart of the rows and the table of numbers."""
    challenge, phase = phase_or_404(request, slug, phase_slug)
    splits = phase_boards(phase=phase)
    if split not in splits:
        raise Http404("No such leaderboard.")
    trait = request.GET.get("trait") or DEFAULT_TRAIT
    asked = request.GET.get("metric", "")
    metric = asked if asked in METRICS else phase.primary_metric
    try:
        data = comparisons.board_by_trait(phase=phase, split=split, trait=trait, metric=metric, viewer=request.user)
    except ApplicationError as exc:
        return render_error(request, exc.message, status=exc.status)
    return render(request, "submissions/by_trait.html", {
        "challenge": challenge, "phase": phase, "split": split, "splits": splits, "data": data,
        "traits": comparisons.trait_specs(phase=phase), "metrics": METRICS, "metric": metric,
        "rows": [{"row": row, "cells": [None if v is None else v.get(metric) for v in row.values]
                  if row.values is not None else None} for row in data.rows],
        "chart": by_trait_data(data),
        "query": urlencode({"trait": trait, **({"metric": metric} if metric != phase.primary_metric else {})}),
    })


def compare(request: HttpRequest, slug: str, phase_slug: str) -> HttpResponse:
    """Submissions side by side (?submissions=12,34). The board's "Compare selected" form sends the ids one by
    one (?submissions=12&submissions=34): they are sent on to the one shareable address."""
    challenge, phase = phase_or_404(request, slug, phase_slug)
    given = request.GET.getlist("submissions")
    if len(given) > 1:
        joined = ",".join(part.strip() for part in given if part.strip())
        return redirect(reverse("compare", args=[challenge.slug, phase.slug]) + "?" + urlencode(
            {"submissions": joined}, safe=","))
    try:
        comparison = comparisons.compare(phase=phase, submission_ids=comparisons.compare_ids(given),
                                         viewer=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from None  # answered as a missing page: existence does not leak
    except ApplicationError as exc:
        return render_error(request, exc.message, status=exc.status)
    names = [_name(s) for s in comparison.submissions]
    return render(request, "submissions/compare.html", {
        "challenge": challenge, "phase": phase, "comparison": comparison, "metrics": METRICS,
        "compared": list(zip(comparison.submissions, names, strict=True)), "reference": names[0],
        "level_percent": f"{100 * comparison.level:g}",
        "splits": [_split_rows(split, names) for split in comparison.splits],
        "traits": [_trait_rows(trait, names) for trait in comparison.traits],
        "videos": None if comparison.videos is None else list(zip(names[1:], comparison.videos, strict=True)),
        "chart": comparison_data(comparison),
    })


def _name(submission: comparisons.Compared) -> str:
    who = "baseline" if submission.is_baseline else (submission.team or "")
    return f"#{submission.submission_id} {submission.method} ({who})"


def _split_rows(split: comparisons.SplitComparison, names: list[str]) -> dict[str, object]:
    return {
        "split": split.split,
        "scores": [{"name": name, "n": n, "cells": [(scores[m], ci.get(m)) for m in METRICS]}
                   for name, scores, ci, n in zip(names, split.scores, split.ci, split.n_expressions, strict=True)],
        "differences": [{"name": name, "cells": [differences[m] for m in METRICS]}
                        for name, differences in zip(names[1:], split.differences, strict=True)],
    }


def _trait_rows(trait: comparisons.TraitComparison, names: list[str]) -> dict[str, object]:
    return {"trait": trait, "rows": [{"name": name, "cells": cells}
                                     for name, cells in zip(names[1:], trait.differences, strict=True)]}
