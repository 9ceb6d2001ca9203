"""The statistics and diagnostics of a scored submission, computed by the worker beside its scores.

Everything here is `scoring.stats` and `scoring.diagnostics` (pure, tested by hand) applied to one evaluation:
- the 95 % cluster-bootstrap interval of each split's four metrics (B = the phase's bootstrap_samples, the
  resamples seeded by the ground-truth version: reproducible, and shared by every submission of that version);
- the per-expression metrics in the ground truth's order (Analysis.values: the paired tests of the boards
  and of comparisons read them);
- the four metrics by bucket of each egocentric trait, and the error types (missed, hallucinated, low-IoU);
- each expression's frame timeline (a gzipped JSON file, shown only where the phase allows details).
The traits themselves belong to the ground-truth version (GroundTruthBundle.traits), computed once.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile

from leaderboard.challenges.models import GroundTruthBundle, Phase
from scoring import Evaluation, GroundTruth
from scoring.diagnostics import Traits, aligned, by_trait, errors, traits
from scoring.stats import OVERALL, intervals

from .models import Analysis, Submission


_TRAITS: dict[str, Traits] = {}  # per ground-truth version, in this worker process (a few versions at most)


def ground_truth_traits(gt: GroundTruth, stored: dict | None = None) -> Traits:
    """The traits of a ground-truth version: those its bundle recorded when it was checked (`stored`), else
    computed; once per worker process and version."""
    found = _TRAITS.get(gt.version)
    if found is None:
        if len(_TRAITS) >= 4:
            _TRAITS.pop(next(iter(_TRAITS)))
        recorded = stored and stored.get("gt_version") == gt.version and stored.get("format") == 1
        found = _TRAITS[gt.version] = Traits.from_dict(stored) if recorded else traits(gt)  # type: ignore[arg-type]
    return found


@dataclass(frozen=True)
class Computed:
    ci: dict[str, dict[str, list[float]] | None]  # None: a split with too few videos for an interval
    values: bytes
    by_trait: dict[str, list[dict[str, object]]]
    errors: dict[str, dict[str, float | int]]
    timelines: bytes
    gt_version: str
    traits: Traits


def analysis_compute(*, evaluation: Evaluation, gt: GroundTruth, phase: Phase) -> Computed:
    """What the statistics need of one evaluation (made with timelines=True)."""
    bundle = phase.ground_truth if phase.ground_truth_id else None
    found = ground_truth_traits(gt, bundle.traits if bundle is not None else None)
    splits = tuple(s for s in evaluation.summaries if s != OVERALL)
    ci = intervals(evaluation.expressions, gt.version, splits=splits, overall=OVERALL in evaluation.summaries,
                   samples=phase.bootstrap_samples).as_dict()
    values, scored = aligned(found, evaluation.expressions)
    timelines = {f"{r.split}/{r.video}/{r.exp_id}": r.timeline.as_dict()
                 for r in evaluation.expressions if r.timeline is not None}
    return Computed(
        ci=ci,
        values=np.ascontiguousarray(values.T, dtype="<f8").tobytes(),
        by_trait={t: [b.as_dict() for b in results] for t, results in by_trait(found, values, scored).items()},
        errors={split: e.as_dict() for split, e in errors(evaluation.expressions).items()},
        timelines=gzip.compress(json.dumps(timelines, separators=(",", ":")).encode(), compresslevel=5, mtime=0),
        gt_version=gt.version,
        traits=found,
    )


def analysis_store(*, submission: Submission, computed: Computed) -> None:
    """Write the analysis of a submission (inside the transaction that writes its scores, with their intervals).
    The ground truth's traits are recorded on first use."""
    analysis, _ = Analysis.objects.update_or_create(
        submission=submission,
        defaults={"gt_version": computed.gt_version, "values": computed.values, "by_trait": computed.by_trait,
                  "errors": computed.errors})
    if analysis.timelines:
        analysis.timelines.delete(save=False)
    analysis.timelines.save("timelines.json.gz", ContentFile(computed.timelines), save=True)
    if submission.phase.ground_truth_id:
        GroundTruthBundle.objects.filter(pk=submission.phase.ground_truth_id, version=computed.gt_version,
                                         traits={}).update(traits=computed.traits.as_dict())


def metric_values(values: bytes, metric_index: int) -> np.ndarray:
    """One metric's per-expression fractions from Analysis.values (NaN where not scored)."""
    array = np.frombuffer(values, dtype="<f8")
    n = array.shape[0] // 4
    return array[metric_index * n : (metric_index + 1) * n]
