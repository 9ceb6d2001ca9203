"""A structure-aware fuzzing harness for the scoring library (tests/scoring/test_fuzz.py, benchmarks/fuzz_scoring.py).

    m = materials(folder)                       # the tiny benchmark and valid submissions, made once
    case = make_case(RandomChooser(rng), m)     # a valid input, mutated at one to three layers
    result = run_case(case, m, workdir)         # result.outcome, result.escapes

`cases()` is the same generator as a hypothesis strategy.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .cases import Case, Materials, groundtruth_case, make_case, materials, submission_case
from .choices import AtherisChooser, Chooser, HypothesisChooser, RandomChooser
from .runner import Escape, Report, Result, load_reproducer, run_case, run_many, save_reproducer

__all__ = [
    "AtherisChooser",
    "Case",
    "Chooser",
    "Escape",
    "HypothesisChooser",
    "Materials",
    "RandomChooser",
    "Report",
    "Result",
    "cases",
    "groundtruth_case",
    "load_reproducer",
    "make_case",
    "materials",
    "run_case",
    "run_many",
    "save_reproducer",
    "submission_case",
]


def cases(m: Materials, target: str | None = None) -> st.SearchStrategy[Case]:
    """Fuzz cases as a hypothesis strategy: "submission", "groundtruth", or both (None)."""
    build = {"submission": submission_case, "groundtruth": groundtruth_case, None: make_case}[target]
    return st.composite(lambda draw: build(HypothesisChooser(draw), m))()
