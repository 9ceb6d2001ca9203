"""`challenge_export`: a challenge as its file (format 1), the inverse of challenge_apply: applying the export
changes nothing. Dates are written in the challenge's time zone with their offset; a phase's ground truth
by its version (the scorer's content hash); hosts and reported rows in full (so the file owns them)."""

from __future__ import annotations

import zoneinfo
from typing import Any

import yaml

from leaderboard.baselines.models import ReportedResult

from ..models import SPLIT_ORDER, Challenge, Host, Phase
from .apply import in_board_order
from .schema import FORMAT
from .yamlfile import Dumper


def challenge_export(*, challenge: Challenge) -> str:
    """The YAML text of the challenge, its hosts and its phases."""
    zone = zoneinfo.ZoneInfo(challenge.time_zone)
    data: dict[str, Any] = {
        "format": FORMAT,
        "challenge": {"slug": challenge.slug, "title": challenge.title, "description": challenge.description,
                      "terms": challenge.terms, "time_zone": challenge.time_zone,
                      "published": challenge.is_published},
        "hosts": [{"username": host.user.get_username(), "role": host.role}
                  for host in Host.objects.filter(challenge=challenge).select_related("user")
                  .order_by("user__username")],
        "phases": [_phase(phase, zone) for phase in challenge.phases.select_related("ground_truth")
                   .prefetch_related("splits").order_by("order", "id")],
    }
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


def _phase(phase: Phase, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return None if value is None else value.astimezone(zone).isoformat()

    item: dict[str, Any] = {"slug": phase.slug, "name": phase.name, "description": phase.description,
                            "order": phase.order, "opens": when(phase.starts_at), "closes": when(phase.ends_at),
                            "accepts_submissions": phase.accepts_submissions,
                            "quota": {"per_day": phase.max_per_day, "total": phase.max_total,
                                      "counts_failed": phase.quota_counts_failed or None},
                            "visibility": phase.visibility, "reveal_at": when(phase.reveal_at),
                            "primary_metric": phase.primary_metric, "ranking_rule": phase.ranking_rule,
                            "show_expression_details": phase.show_expression_details,
                            "statistics": {"bootstrap_samples": phase.bootstrap_samples, "tie_level": phase.tie_level,
                                           "min_bucket_size": phase.min_bucket_size},
                            "ladder": phase.ladder, "ladder_step": phase.ladder_step,
                            "requires_terms": phase.requires_terms,
                            # No board rows yet (a phase older than them): it shows all four (phase_boards).
                            "splits": [split.code for split in phase.splits.all()] or list(SPLIT_ORDER)}
    item = {key: value for key, value in item.items() if value is not None}
    item["quota"] = {key: value for key, value in item["quota"].items() if value is not None}
    if not item["quota"]:
        del item["quota"]
    if phase.ground_truth is not None:
        bundle = phase.ground_truth
        item["ground_truth"] = {"version": bundle.version} if bundle.version else {"name": bundle.name}
    item["reported"] = [_reported(row) for row in ReportedResult.objects.filter(phase=phase).order_by("method")]
    return item


def _reported(row: ReportedResult) -> dict[str, Any]:
    item: dict[str, Any] = {"method": row.method, "source": row.source_url}
    if row.citation:
        item["citation"] = row.citation
    if row.note:
        item["note"] = row.note
    item["values"] = in_board_order(row.values)
    return item
