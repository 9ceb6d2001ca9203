"""Reads: a submission's diagnostics as its page and the API serve them (one JSON-ready dict for both).

What a viewer gets follows selectors.submission_access, the one rule, and the issue's leak rule beside it:
- no `view`: nothing (the interfaces answer as for a missing submission); no `exact_scores` (the phase runs
  the Ladder and has not ended): no diagnostics at all, a sentence instead;
- the four metrics by bucket of each egocentric trait (Analysis.by_trait, computed by the worker), beside
  the same numbers of the phase's baselines on the board (scored against the same ground-truth version),
  the traits' definitions (GroundTruthBundle.traits: label, unit, edges, bucket labels, k) and the error
  types per split (Analysis.errors);
- whenever `details` is False for the viewer (test phases, and every baseline for a team), a bucket with
  fewer than the phase's `min_bucket_size` expressions is left out (a note says how many), and nothing per
  video or per frame is given; with `details`, the expressions whose frame timelines can be read
  (submission_timeline).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from django.urls import reverse

from leaderboard.challenges.models import SPLIT_ORDER, GroundTruthBundle
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, NotFound
from scoring import METRICS
from scoring.diagnostics import NONE_BUCKET, TRAITS

from .models import Analysis, BoardRow, Submission
from .selectors import Access, Viewer, small_buckets_shown, submission_access

LADDER_MESSAGE = ("This phase runs the Ladder: only the shown score of each team changes, so diagnostics are "
                  "kept back until the phase ends.")
UNSCORED_MESSAGE = "No diagnostics for this submission yet: they are made when it is scored."
EXPRESSION_KEY_MAX = 300


def _withheld_note(withheld: int, total: int, minimum: int) -> str:
    """What the leak rule kept back, in words."""
    rule = (f"Groups of fewer than {minimum} expressions are not shown here: a test phase tells nothing about "
            "a few videos.")
    if not withheld:
        return f"{rule} Every bucket of this submission has at least {minimum}."
    return f"{rule} {withheld} of this submission's {total} buckets {'is' if withheld == 1 else 'are'} withheld."


def _shown(by_trait: dict[str, list[dict[str, Any]]], *, details: bool, minimum: int
           ) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    """The buckets a viewer may see (all with details, else those with n >= minimum), in trait order, with
    the metrics in METRICS order; and how many were withheld of how many."""
    shown: dict[str, list[dict[str, Any]]] = {}
    withheld = total = 0
    for trait in (*TRAITS, *sorted(set(by_trait) - set(TRAITS))):
        if trait not in by_trait:
            continue
        rows = []
        for bucket in by_trait[trait]:
            total += 1
            if not details and int(bucket["n"]) < minimum:
                withheld += 1
                continue
            rows.append({"bucket": bucket["bucket"], "n": int(bucket["n"]),
                         **{m: bucket.get(m) for m in METRICS}})
        shown[trait] = rows
    return shown, withheld, total


def _definitions(submission: Submission, analysis: Analysis) -> tuple[list[dict[str, Any]], int | None]:
    """The traits' definitions of the analysis's ground-truth version (in TRAITS order) and its k; without the
    version's traits (not recorded), each trait is named by itself and its buckets by the analysis."""
    spec = (GroundTruthBundle.objects.filter(challenge_id=submission.phase.challenge_id, version=analysis.gt_version)
            .exclude(traits={}).values_list("traits", flat=True).first()) or {}
    traits = spec.get("traits", {})
    out = []
    for name in (*TRAITS, *sorted(set(analysis.by_trait) - set(TRAITS))):
        if name not in traits and name not in analysis.by_trait:
            continue
        found = traits.get(name, {})
        buckets = list(found.get("buckets") or [b["bucket"] for b in analysis.by_trait.get(name, [])
                                                 if b["bucket"] != NONE_BUCKET])
        out.append({"name": name, "label": found.get("label", name), "unit": found.get("unit", ""),
                    "edges": list(found.get("edges", [])), "buckets": buckets})
    return out, spec.get("k")


def _baselines(submission: Submission, analysis: Analysis, user: Viewer) -> list[dict[str, Any]]:
    """The phase's baselines on its board (not this submission), scored against the same ground-truth version,
    that the viewer may see; each with its buckets as the viewer may see that baseline's."""
    ids = set(BoardRow.objects.filter(phase_id=submission.phase_id, is_baseline=True, submission_id__isnull=False)
              .exclude(submission_id=submission.pk).values_list("submission_id", flat=True))
    candidates = (Submission.objects.filter(pk__in=ids, analysis__gt_version=analysis.gt_version)
                  .select_related("phase__challenge", "team", "analysis").order_by("method_name", "pk"))
    out = []
    for baseline in candidates:
        access = submission_access(submission=baseline, user=user)
        if not access.view or not access.exact_scores:
            continue
        shown, _, _ = _shown(baseline.analysis.by_trait, details=small_buckets_shown(details=[access.details]),
                             minimum=submission.phase.min_bucket_size)
        out.append({"submission": baseline.pk, "method": baseline.method_name, "by_trait": shown})
    return out


def _errors(analysis: Analysis) -> dict[str, dict[str, Any]]:
    order = {code: i for i, code in enumerate(SPLIT_ORDER)}
    return {split: analysis.errors[split] for split in sorted(analysis.errors, key=lambda s: order.get(s, 99))}


def _unavailable(submission: Submission, message: str) -> dict[str, Any]:
    return {"submission": submission.pk, "available": False, "message": message}


def _analysis_of(submission: Submission) -> Analysis | None:
    """What the worker stored when it scored the submission (a rescored one keeps its last until replaced)."""
    return Analysis.objects.filter(submission=submission).first()


def submission_diagnostics(*, submission: Submission, user: Viewer, access: Access | None = None) -> dict[str, Any]:
    """The submission's diagnostics as `user` may see them (see the module's rules); `access`: the viewer's,
    when the caller has it already."""
    access = access or submission_access(submission=submission, user=user)
    if not access.view:
        return _unavailable(submission, "There is no such submission that you can see.")
    if not access.exact_scores:
        return _unavailable(submission, LADDER_MESSAGE)
    analysis = _analysis_of(submission)
    if analysis is None:
        return _unavailable(submission, UNSCORED_MESSAGE)
    phase = submission.phase
    shown, withheld, total = _shown(analysis.by_trait, details=small_buckets_shown(details=[access.details]),
                                    minimum=phase.min_bucket_size)
    traits, k = _definitions(submission, analysis)
    data: dict[str, Any] = {
        "submission": submission.pk, "available": True, "message": "", "details": access.details,
        "gt_version": analysis.gt_version, "primary_metric": phase.primary_metric, "metrics": list(METRICS),
        "min_bucket_size": phase.min_bucket_size, "k": k, "traits": traits, "by_trait": shown,
        "withheld": None if access.details else {"buckets": withheld, "of": total,
                                                 "note": _withheld_note(withheld, total, phase.min_bucket_size)},
        "baselines": _baselines(submission, analysis, user),
        "errors": _errors(analysis),
    }
    if access.details:
        data["expressions"] = list(_timelines(analysis))
        data["timelines_url"] = reverse("api-submission-timelines", args=[submission.pk])
    return data


def _timelines(analysis: Analysis) -> dict[str, dict[str, Any]]:
    """The gzipped JSON of every expression's timeline ({} when the analysis has none)."""
    if not analysis.timelines:
        return {}
    with analysis.timelines.open("rb") as handle:
        return json.loads(gzip.decompress(handle.read()))  # type: ignore[no-any-return]


def submission_timeline(*, submission: Submission, user: Viewer, expression_key: str) -> dict[str, Any]:
    """One expression's frame timeline ("split/video/exp_id"): the ground-truth frames G and the predicted
    frames P as [start, stop) ranges of positions in the video, and each hit's [position, IoU]. Only for a
    viewer with `details` (NotAllowed otherwise); NotFound for a submission the viewer may not see, or an
    expression it has no timeline of; Conflict before it is scored."""
    access = submission_access(submission=submission, user=user)
    if not access.view:
        raise NotFound(f"There is no submission {submission.pk} that you can see.")
    if not access.exact_scores:
        raise NotAllowed(LADDER_MESSAGE)
    if not access.details:
        raise NotAllowed("This phase shows no per-frame details to teams (a test phase tells nothing per video); "
                         "the diagnostics by trait are on the submission's page.")
    key = (expression_key or "").strip()
    if not key:
        raise ApplicationError("Name an expression: ?expression=split/video/exp_id (the diagnostics list them).")
    if len(key) > EXPRESSION_KEY_MAX:
        raise ApplicationError(f"An expression is named in at most {EXPRESSION_KEY_MAX} characters "
                               "(split/video/exp_id).")
    analysis = _analysis_of(submission)
    if analysis is None or not analysis.timelines:
        raise Conflict(f"Submission {submission.pk} has no timelines yet: they are made when it is scored.")
    timelines = _timelines(analysis)
    if key not in timelines:
        raise NotFound(f"Submission {submission.pk} has no timeline of the expression {key!r}; its diagnostics "
                       "list the expressions it has.", detail={"expression": key})
    split, rest = key.split("/", 1)  # the worker names them split/video/exp_id
    video, exp_id = rest.rsplit("/", 1)
    timeline = timelines[key]
    return {"submission": submission.pk, "expression": key, "split": split, "video": video, "exp_id": exp_id,
            "n": timeline["n"], "gt": timeline["gt"], "pred": timeline["pred"], "hits": timeline["hits"],
            "low_iou_below": _low_iou(analysis)}


def _low_iou(analysis: Analysis) -> float | None:
    return next((e.get("low_iou_below") for e in analysis.errors.values()), None)


# --- the page's tables (the charts' numbers, for readers without the charts) -----------------------------


def diagnostics_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per trait: its buckets with the count and the primary metric of this submission and of each baseline
    (None where a baseline has no such bucket shown), in the order the chart draws them."""
    if not data.get("available"):
        return []
    metric = data["primary_metric"]
    tables = []
    for trait in data["traits"]:
        rows = data["by_trait"].get(trait["name"], [])
        labels = [label for label in (*trait["buckets"], NONE_BUCKET)
                  if any(r["bucket"] == label for r in rows)
                  or any(r["bucket"] == label for b in data["baselines"] for r in b["by_trait"].get(trait["name"], []))]
        own = {r["bucket"]: r for r in rows}
        others = [{r["bucket"]: r for r in b["by_trait"].get(trait["name"], [])} for b in data["baselines"]]
        tables.append({"name": trait["name"], "label": trait["label"], "unit": trait["unit"], "rows": [
            {"bucket": label, "n": (own.get(label) or next((o[label] for o in others if label in o), {})).get("n"),
             "value": own[label][metric] if label in own else None,
             "baselines": [o[label][metric] if label in o else None for o in others]}
            for label in labels]})
    return tables
