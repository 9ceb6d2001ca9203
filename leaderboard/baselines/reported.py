"""Reported results: numbers a paper gives for a method, imported from a small JSON file and shown on
the boards marked "reported (paper)", never ranked and never mistaken for a run here.

The file (see data/egomask-paper.json):

    {"source_url": "https://arxiv.org/abs/...", "citation": "Authors, Title, year",
     "note": "what the numbers are (optional)",
     "results": [{"method": "Grounded-SAM2", "values": {"short": {"IoU_gold_pred": 49.95}, ...}}, ...]}

A result may carry its own source_url, citation and note. Only the metrics the source gives are
stored; the other cells of the row stay empty.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from leaderboard.challenges.models import SPLIT_ORDER, Phase
from leaderboard.errors import ApplicationError
from leaderboard.submissions.boards import board_changed, boards_deferred
from scoring import METRICS

from .models import ReportedResult

PAPER_FILE = Path(__file__).resolve().parent / "data" / "egomask-paper.json"


@dataclass(frozen=True)
class Reported:
    method: str
    source_url: str
    citation: str
    note: str
    values: dict[str, dict[str, float]]


def _values(method: str, raw: Any) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict) or not raw:
        raise ApplicationError(f"{method!r}: \"values\" must map a split to {{metric: percent}}.")
    values: dict[str, dict[str, float]] = {}
    for split, metrics in raw.items():
        if split not in SPLIT_ORDER:
            raise ApplicationError(f"{method!r}: unknown split {split!r} (one of {', '.join(SPLIT_ORDER)}).")
        if not isinstance(metrics, dict) or not metrics:
            raise ApplicationError(f"{method!r}: the {split} values must be {{metric: percent}}.")
        for metric, value in metrics.items():
            if metric not in METRICS:
                raise ApplicationError(f"{method!r}: unknown metric {metric!r} (one of {', '.join(METRICS)}).")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0 <= value <= 100:
                raise ApplicationError(f"{method!r}: {split} {metric} must be a percentage, not {value!r}.")
        values[split] = {metric: float(value) for metric, value in metrics.items()}
    return values


def reported_parse(text: str) -> list[Reported]:
    """The results of a reported-results file, or ApplicationError saying what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ApplicationError(f"The reported-results file is not JSON: {exc}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) or not data["results"]:
        raise ApplicationError("The reported-results file must be {\"source_url\": ..., \"results\": [...]}.")
    parsed, seen = [], set()
    for item in data["results"]:
        if not isinstance(item, dict) or not str(item.get("method", "")).strip():
            raise ApplicationError("Every result needs a \"method\" name.")
        method = str(item["method"]).strip()
        if method in seen:
            raise ApplicationError(f"{method!r} is listed twice.")
        seen.add(method)
        source = str(item.get("source_url") or data.get("source_url") or "")
        try:
            URLValidator(schemes=["http", "https"])(source)
        except ValidationError:
            raise ApplicationError(f"{method!r}: the source_url must be an http(s) address, not {source!r}.") from None
        parsed.append(Reported(method=method, source_url=source,
                               citation=str(item.get("citation") or data.get("citation") or "")[:300],
                               note=str(item.get("note") or data.get("note") or ""),
                               values=_values(method, item.get("values"))))
    return parsed


def reported_import(*, phase: Phase, results: list[Reported]) -> dict[str, int]:
    """Create or update one reported row per method of the phase. Idempotent: the same file twice
    changes nothing the second time. Rows of methods the file does not list are left alone."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic(), boards_deferred():
        for result in results:
            fields = {"source_url": result.source_url, "citation": result.citation, "note": result.note,
                      "values": result.values}
            row = ReportedResult.objects.select_for_update().filter(phase=phase, method=result.method).first()
            if row is None:
                ReportedResult.objects.create(phase=phase, method=result.method, **fields)
                counts["created"] += 1
            elif any(getattr(row, key) != value for key, value in fields.items()):
                ReportedResult.objects.filter(pk=row.pk).update(**fields)
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        if counts["created"] or counts["updated"]:
            board_changed(phase_id=phase.pk)
    return counts


def reported_sync(*, phase: Phase, results: list[Reported]) -> dict[str, int]:
    """Make the phase's reported rows exactly `results` (a challenge file's list): create, update, and delete
    the rows of methods it does not list. Rows are saved one by one (.save(), .delete()), so model signals
    and the audit log see each; the boards are rebuilt once."""
    counts = {"created": 0, "updated": 0, "removed": 0, "unchanged": 0}
    wanted = {result.method: result for result in results}
    with transaction.atomic(), boards_deferred():
        for row in ReportedResult.objects.select_for_update().filter(phase=phase).exclude(method__in=list(wanted)):
            row.delete()
            counts["removed"] += 1
        for result in results:
            fields = {"source_url": result.source_url, "citation": result.citation, "note": result.note,
                      "values": result.values}
            row = ReportedResult.objects.select_for_update().filter(phase=phase, method=result.method).first()
            if row is None:
                ReportedResult(phase=phase, method=result.method, **fields).save()
                counts["created"] += 1
            elif any(getattr(row, key) != value for key, value in fields.items()):
                for key, value in fields.items():
                    setattr(row, key, value)
                row.save()
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts
