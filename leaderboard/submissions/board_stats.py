"""The statistics a materialized board carries beside its ranks: each row's intervals and its tie group.

- ci: the row's stored 95 % intervals for that split (Score.ci, computed when it was scored).
- tie_group: the board position of the first row of the row's group of statistically tied rows (served as
  that row's rank: selectors.board_get). Along each split's
  board, every row with per-expression results on the phase's ground-truth version is tested against the next
  such row (paired cluster bootstrap on the phase's primary metric, the same resamples its intervals used);
  the tests are Holm-corrected together at the phase's tie_level, and rows joined by a test that is not
  rejected form a group (scoring.stats.tie_groups). Rows without such results (reported numbers, older
  scores) have no group and break no chain: the test skips over them.
Reads only: board_refresh (boards.py) stores what this returns, in its transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from django.db.models import BinaryField
from django.db.models.functions import Substr

from leaderboard.challenges.models import GroundTruthBundle, Phase
from scoring import METRICS
from scoring.stats import OVERALL, adjacent_p_values, design, tie_groups

from .models import Analysis, Score
from .selectors import LeaderboardRow

Placed = tuple[str, int, LeaderboardRow]  # split, position, row


def board_statistics(*, phase: Phase, rows: Sequence[Placed]) -> dict[tuple[str, int], tuple[dict | None, int | None]]:
    """(ci, tie_group) per (split, position) of the rows board_refresh is about to store."""
    ids = {row.submission_id for _, _, row in rows if row.submission_id is not None}
    cis = {(sid, split): ci for sid, split, ci in
           Score.objects.filter(submission_id__in=ids).values_list("submission_id", "split", "ci")}
    out: dict[tuple[str, int], tuple[dict | None, int | None]] = {
        (split, position): (cis.get((row.submission_id, split)) or None, None) for split, position, row in rows}
    by_split: dict[str, list[tuple[int, LeaderboardRow]]] = defaultdict(list)
    for split, position, row in rows:
        if row.rank is not None and row.submission_id is not None:
            by_split[split].append((position, row))
    bundle = phase.ground_truth if phase.ground_truth_id else None
    if not by_split or bundle is None or bundle.status != GroundTruthBundle.Status.READY or not bundle.traits:
        return out
    keys = [(e["split"], e["video"]) for e in bundle.traits["expressions"]]
    vectors = _primary_values(phase, bundle.version, len(keys), ids)
    for split, ranked in by_split.items():
        index = np.arange(len(keys)) if split == OVERALL else np.flatnonzero([k[0] == split for k in keys])
        testable = [(position, row) for position, row in ranked if row.submission_id in vectors
                    and len(index) and np.isfinite(vectors[row.submission_id][index]).all()]
        if not testable:
            continue
        columns = np.column_stack([vectors[row.submission_id][index] for _, row in testable])
        plan = design(split, [keys[i] for i in index], bundle.version, samples=phase.bootstrap_samples)
        groups = tie_groups(adjacent_p_values(columns, plan), phase.tie_level)
        for (position, _), first in zip(testable, groups):
            out[(split, position)] = (out[(split, position)][0], testable[first][0])
    return out


def _primary_values(phase: Phase, gt_version: str, n: int, ids: set[int]) -> dict[int, np.ndarray]:
    """Each submission's per-expression values of the primary metric (only that slice of Analysis.values)."""
    start = METRICS.index(phase.primary_metric) * n * 8
    found = (Analysis.objects.filter(submission_id__in=ids, gt_version=gt_version)
             .annotate(part=Substr("values", start + 1, n * 8, output_field=BinaryField()))
             .values_list("submission_id", "part"))
    return {sid: np.frombuffer(bytes(part), dtype="<f8") for sid, part in found if part and len(part) == n * 8}
