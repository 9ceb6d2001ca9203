"""The Ladder: what a team's shown test score is when exact scores must not be given away.

Blum, A. and Hardt, M. (2015), "The Ladder: A Reliable Leaderboard for Machine Learning Competitions",
Proceedings of the 32nd International Conference on Machine Learning (ICML), PMLR 37:1006-1014,
Algorithm 1 ("Ladder"), restated for a score where higher is better (the paper minimises a loss).

The variant, exactly: one Ladder per team (and per board), over the team's scores s_1, s_2, ... in the
order the submissions were made, with a step η > 0:

    shown_1 = [s_1]_η                                  (the paper's R_0 = ∞: the first score always counts)
    shown_t = [s_t]_η    if s_t > shown_{t-1} + η      (strictly more than η above the shown score)
    shown_t = shown_{t-1} otherwise

where [x]_η is x rounded to the nearest integer multiple of η (a value halfway between two multiples
goes up). This is the paper's basic Ladder with a fixed step, not its parameter-free variant (which
picks the step from a paired t-test between submissions). A score that is missing (None or NaN) leaves
the shown score as it was; before the first score there is none (None).

The arithmetic is decimal on the numbers as written (repr), so that a step of 0.1 compares and rounds
as a person would (70.1 + 0.1 is 70.2, not 70.19999999999999).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class LadderStep:
    """The Ladder after one submission: the score it shows, whether this submission changed it, and the
    position (0-based, in the input) of the submission whose score set it (None before any score)."""

    shown: float | None
    moved: bool
    setter: int | None


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _check_step(step: float) -> Decimal:
    if not (isinstance(step, int | float) and math.isfinite(step) and step > 0):
        raise ValueError(f"the Ladder's step must be a positive number, not {step!r}")
    return _decimal(step)


def round_to_step(value: float, step: float) -> float:
    """`value` rounded to the nearest integer multiple of `step` (halfway goes up)."""
    eta = _check_step(step)
    multiples = (_decimal(value) / eta).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(multiples * eta)


def ladder(scores: Iterable[float | None], step: float) -> list[LadderStep]:
    """The Ladder after each of `scores` (in submission order, higher is better), as the module describes."""
    eta = _check_step(step)
    steps: list[LadderStep] = []
    shown: float | None = None
    setter: int | None = None
    for index, score in enumerate(scores):
        moved = False
        present = score is not None and not math.isnan(score)
        if present and (shown is None or _decimal(score) - _decimal(shown) > eta):
            shown, setter, moved = round_to_step(score, step), index, True
        steps.append(LadderStep(shown=shown, moved=moved, setter=setter))
    return steps


def ladder_score(scores: Iterable[float | None], step: float) -> LadderStep:
    """The Ladder after the last of `scores` (LadderStep(None, False, None) when there is none)."""
    steps = ladder(scores, step)
    return steps[-1] if steps else LadderStep(shown=None, moved=False, setter=None)
