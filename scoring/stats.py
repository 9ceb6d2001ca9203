"""What the numbers mean: bootstrap intervals over videos, paired tests between submissions, tie groups.

Expressions of one video are not independent (same scene, same camera wearer, often the same object), so
every resample draws whole videos: a cluster bootstrap. A medium clip `<clip>--<k>` is cut from the long
video `<clip>`, so it is clustered with its source (and, for "overall", with that long video's own
expressions). A split's statistic is the unweighted mean over the resampled expressions, as the split's
score is over all of them.

The resamples depend only on the clusters, the seed and B: every submission scored on one ground-truth
version is resampled with the same draws. That makes intervals reproducible (the same file gives the same
interval on any machine) and makes two submissions' draws paired (common random numbers), which is what the
paired test between them needs.

    interval        percentile interval of the split's mean over B cluster resamples (95 %: the 2.5th and
                    97.5th percentiles, numpy's linear interpolation), in percent
    paired test     the same resamples of the per-expression difference A - B: the percentile interval of the
                    mean difference d, and a two-sided p-value from its bootstrap standard error,
                    z = d / sd(d*), p = erfc(|z| / sqrt(2)) (the normal approximation). Counting resamples
                    on either side of zero would floor p at 2 / (B + 1) (0.002 for B = 1000), and Holm along a
                    board of m rows needs p below 0.05 / m: 0.0017 for 30 rows. When every resample gives
                    the same difference (sd 0), p is 1 for a zero difference and 0 otherwise.
    tie groups      the paired tests between adjacent rows of a board, Holm-corrected along the board (step
                    down over the m = rows - 1 tests); rows joined by a test that is not rejected are one
                    group. Ranks are not changed: groups are shown beside them.

A split with fewer than MIN_CLUSTERS videos (after clustering) has no interval and no test: resampling one
video says nothing about the variation between videos, so its interval would be a point and any difference
"significant". Such a split gets None, and its tests p = 1 (never distinguishable). With few clusters (the long
split's 15 videos) the percentile interval is somewhat too narrow; it is still far better than none.

Everything is vectorised: one (B x clusters) matrix of draw counts, one matrix product per statistic.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .metrics import METRICS

DEFAULT_SAMPLES = 1000
DEFAULT_LEVEL = 0.95
DEFAULT_ALPHA = 0.05
MIN_CLUSTERS = 2
OVERALL = "overall"


def cluster_of(split: str, video: str) -> str:
    """The resampling unit of an expression: its video, or for a medium clip the long video it is cut from."""
    if split == "medium" and "--" in video:
        return video.rsplit("--", 1)[0]
    return video


def seed_for(gt_version: str, split: str, seed: int = 0) -> int:
    """The random seed of a ground-truth version's resamples of one split (stable across machines)."""
    digest = hashlib.sha256(f"egomask-bootstrap/1:{gt_version}:{split}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True, eq=False)
class Resampling:
    """B cluster resamples of a fixed list of expressions.

    `members` gives each expression's cluster (0 .. C-1); `draws[b, c]` how many times resample b drew
    cluster c (each resample draws C clusters with replacement)."""

    members: np.ndarray  # (E,) int
    draws: np.ndarray  # (B, C) float64 counts
    sizes: np.ndarray  # (C,) expressions per cluster

    @property
    def indicator(self) -> np.ndarray:
        """(C, E): 1 where expression e belongs to cluster c."""
        found = self.__dict__.get("_indicator")
        if found is None:
            found = np.zeros((self.sizes.shape[0], self.n_expressions))
            found[self.members, np.arange(self.n_expressions)] = 1.0
            object.__setattr__(self, "_indicator", found)
        return found

    @property
    def clusters(self) -> int:
        return int(self.sizes.shape[0])

    @property
    def informative(self) -> bool:
        """Enough videos for an interval or a test (MIN_CLUSTERS)."""
        return self.clusters >= MIN_CLUSTERS

    @property
    def samples(self) -> int:
        return int(self.draws.shape[0])

    @property
    def n_expressions(self) -> int:
        return int(self.members.shape[0])

    def means(self, values: np.ndarray) -> np.ndarray:
        """Resampled means of per-expression values: (E,) → (B,), or (E, K) → (B, K)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != self.n_expressions:
            raise ValueError(f"{values.shape[0]} values for {self.n_expressions} expressions")
        flat = values.reshape(self.n_expressions, -1)
        sums = self.indicator @ flat  # (C, K): each cluster's sum
        resampled = (self.draws @ sums) / (self.draws @ self.sizes)[:, None]
        return resampled.reshape((self.samples, *values.shape[1:]))


def resampling(clusters: Sequence[str], *, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Resampling:
    """B cluster resamples of expressions whose clusters are `clusters` (one name per expression)."""
    if samples < 1:
        raise ValueError("the bootstrap needs at least one resample")
    if not clusters:
        raise ValueError("no expressions to resample")
    names, members = np.unique(np.asarray(clusters, dtype=object), return_inverse=True)
    n = len(names)
    picks = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    draws = np.zeros(samples * n)
    np.add.at(draws, (picks + (np.arange(samples) * n)[:, None]).ravel(), 1.0)
    return Resampling(members=members.astype(np.int64), draws=draws.reshape(samples, n),
                      sizes=np.bincount(members, minlength=n).astype(np.float64))


@lru_cache(maxsize=32)
def _cached(key: tuple[str, ...], samples: int, seed: int) -> Resampling:
    return resampling(key, samples=samples, seed=seed)


def design(split: str, keys: Sequence[tuple[str, str]], gt_version: str, *, samples: int = DEFAULT_SAMPLES,
           seed: int = 0) -> Resampling:
    """The resamples of one split's expressions, given as (split, video) pairs in the ground truth's order:
    the same for every submission of one ground-truth version (cached: a worker scores many)."""
    return _cached(tuple(cluster_of(s, v) for s, v in keys), samples, seed_for(gt_version, split, seed))


def percentile_interval(resampled: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """(low, high) of resampled statistics (B,) or (B, K) → (2,) or (2, K)."""
    tail = (1.0 - level) / 2.0
    return np.quantile(resampled, [tail, 1.0 - tail], axis=0)


@dataclass(frozen=True)
class Intervals:
    """Per split (and "overall"), per metric: the percentile interval in percent (None: too few videos)."""

    by_split: Mapping[str, Mapping[str, tuple[float, float]] | None]
    samples: int
    level: float

    def as_dict(self) -> dict[str, dict[str, list[float]] | None]:
        return {split: None if ci is None else {m: [low, high] for m, (low, high) in ci.items()}
                for split, ci in self.by_split.items()}


def metric_matrix(rows: Sequence[object]) -> np.ndarray:
    """(E, 4) fractions of the four metrics of ExpressionResult-like rows (each with .scores.metric(name))."""
    return np.asarray([[row.scores.metric(m) for m in METRICS] for row in rows], dtype=np.float64)  # type: ignore[attr-defined]


def intervals(rows: Sequence[object], gt_version: str, *, splits: Sequence[str], overall: bool,
              samples: int = DEFAULT_SAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0) -> Intervals:
    """The intervals of an evaluation's per-expression rows (ExpressionResult: .split, .video, .scores)."""
    values = metric_matrix(rows)
    keys = [(row.split, row.video) for row in rows]  # type: ignore[attr-defined]
    out: dict[str, dict[str, tuple[float, float]] | None] = {}
    groups = [(s, [i for i, k in enumerate(keys) if k[0] == s]) for s in splits]
    if overall:
        groups.append((OVERALL, list(range(len(keys)))))
    for name, index in groups:
        if not index:
            continue
        plan = design(name, [keys[i] for i in index], gt_version, samples=samples, seed=seed)
        if not plan.informative:
            out[name] = None
            continue
        bounds = 100.0 * percentile_interval(plan.means(values[index]), level)
        out[name] = {m: (float(bounds[0, j]), float(bounds[1, j])) for j, m in enumerate(METRICS)}
    return Intervals(by_split=out, samples=samples, level=level)


@dataclass(frozen=True)
class PairedTest:
    """A − B on one split and metric, in percent points (low and high None: too few videos to test; p 1)."""

    difference: float
    low: float | None
    high: float | None
    p_value: float
    n_expressions: int

    def as_dict(self) -> dict[str, object]:
        return {"difference": self.difference, "ci": None if self.low is None else [self.low, self.high],
                "p_value": self.p_value, "n_expressions": self.n_expressions}


_erfc = np.frompyfunc(math.erfc, 1, 1)


def p_value(observed: np.ndarray | float, resampled_differences: np.ndarray) -> np.ndarray:
    """Two-sided p-value of observed mean differences () or (K,) from their resamples (B,) or (B, K): the normal
    approximation with the bootstrap standard error (see the module's docstring)."""
    d = np.asarray(observed, dtype=np.float64)
    se = np.asarray(resampled_differences, dtype=np.float64).std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(d) / se
    z = np.where(se > 0, z, np.where(d == 0, 0.0, np.inf))
    return np.asarray(_erfc(z / math.sqrt(2.0)), dtype=np.float64)


def paired_test(a: np.ndarray, b: np.ndarray, plan: Resampling, level: float = DEFAULT_LEVEL) -> PairedTest:
    """Paired bootstrap of the mean of a − b (per-expression fractions of one metric, same expressions)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not plan.informative:
        return PairedTest(100.0 * float(diff.mean()), None, None, 1.0, int(diff.shape[0]))
    resampled = plan.means(diff)
    low, high = percentile_interval(resampled, level)
    return PairedTest(difference=100.0 * float(diff.mean()), low=100.0 * float(low), high=100.0 * float(high),
                      p_value=float(p_value(diff.mean(), resampled)), n_expressions=int(diff.shape[0]))


def adjacent_p_values(columns: np.ndarray, plan: Resampling) -> np.ndarray:
    """The paired p-values of each column against the next: columns (E, R) in board order → (R - 1,)."""
    columns = np.asarray(columns, dtype=np.float64)
    if columns.shape[1] < 2:
        return np.zeros(0)
    if not plan.informative:
        return np.ones(columns.shape[1] - 1)
    differences = columns[:, :-1] - columns[:, 1:]
    return np.atleast_1d(p_value(differences.mean(axis=0), plan.means(differences)))


def holm_rejected(p_values: Sequence[float], alpha: float = DEFAULT_ALPHA) -> list[bool]:
    """Holm's step-down procedure: which of m hypotheses are rejected at family-wise level alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    rejected = [False] * m
    for step, i in enumerate(np.argsort(p, kind="stable")):
        if p[i] > alpha / (m - step):
            break
        rejected[int(i)] = True
    return rejected


def tie_groups(p_values: Sequence[float], alpha: float = DEFAULT_ALPHA) -> list[int]:
    """Per row of a board (len(p_values) + 1 rows, in board order), the position (0-based) of the first row of
    its group: rows i and i+1 are in one group when their test (p_values[i]) is not rejected by Holm."""
    rejected = holm_rejected(p_values, alpha)
    groups = [0]
    for i, reject in enumerate(rejected):
        groups.append(i + 1 if reject else groups[-1])
    return groups
