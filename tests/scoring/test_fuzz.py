"""Fuzzing: every mutated input ends in a score or the library's own error, within a memory cap (issue 9).

The cases come from tests/scoring/fuzzkit: valid inputs of the tiny synthetic benchmark (RLE, PNG
and official-runner submissions, and the benchmark's own tree) mutated at one to three layers:
zip header fields and bytes, names and arrangement, JSON, RLE, PNG. Every entry point must end
in a result or InvalidSubmission / InvalidGroundTruth with a sentence naming the file, and
validate_submission must report exactly what evaluate raises (fuzzkit/runner.py has the rules).

Hypothesis runs derandomized and without a database, so these are the same few hundred cases on
every run; benchmarks/fuzz_scoring.py runs the same generator at scale. Inputs that once escaped
are kept in tests/scoring/data/fuzz-corpus/ (test_fuzz_corpus.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scoring import load_ground_truth

from .fuzzkit import Case, Materials, cases, run_case
from .fuzzkit.runner import CASE_BUDGET_MB
from .fuzzkit.zips import entries_from_files, zip_bytes

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "data" / "fuzz-corpus"
FUZZ = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def kit(fuzz_kit: Materials) -> Materials:
    return fuzz_kit


def outcome_of(case: Case, kit: Materials) -> str:
    """The case's outcome, after checking that nothing escaped."""
    result = run_case(case, kit, kit.folder / "work")
    assert result.escapes == [], "\n".join([*case.steps, *map(str, result.escapes)])
    return result.outcome


# --- the valid inputs every case starts from ----------------------------------------------------------------------


@pytest.mark.parametrize("container", ["zip", "folder"])
def test_it_starts_from_submissions_that_score(kit, container):
    for name, entries in kit.bases.items():
        case = Case("submission", container, list(entries), data=zip_bytes(entries), steps=[name])
        assert outcome_of(case, kit) == "scored", name


@pytest.mark.parametrize("container", ["zip", "folder"])
def test_it_starts_from_a_ground_truth_that_loads_as_the_benchmark(kit, container):
    entries = entries_from_files(kit.gt_files)
    case = Case("groundtruth", container, entries, data=zip_bytes(entries))
    assert outcome_of(case, kit) == "gt:loaded/scored"
    written = kit.folder / "work" / ("gt.zip" if container == "zip" else "gt")
    assert load_ground_truth(written).version == kit.gt.version


# --- mutated inputs -------------------------------------------------------------------------------------------------


# `--hypothesis-show-statistics` lists the outcomes reached (events).
@given(data=st.data())
@settings(FUZZ, max_examples=200)
def test_it_scores_or_refuses_every_mutated_submission(kit, data):
    case = data.draw(cases(kit, "submission"))
    outcome = outcome_of(case, kit)
    event(outcome)
    assert outcome != "escape"


@given(data=st.data())
@settings(FUZZ, max_examples=100)
def test_it_loads_or_refuses_every_mutated_ground_truth(kit, data):
    case = data.draw(cases(kit, "groundtruth"))
    outcome = outcome_of(case, kit)
    event(outcome)
    assert outcome.startswith("gt:")


# --- at scale, under a memory cap -------------------------------------------------------------------------------------

CAP_MB = 768  # address space the cases may add to what the process holds once its inputs are made
CHILD = r"""
import json, random, resource, sys, tempfile
from pathlib import Path
from tests.scoring.fuzzkit import RandomChooser, load_reproducer, make_case, materials, run_many
from tests.scoring.fuzzkit.runner import peak_rss_mb
folder, corpus = Path(sys.argv[1]), Path(sys.argv[2])
count, cap_mb, budget_mb = (int(v) for v in sys.argv[3:6])
m = materials(folder)
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + cap_mb * 2**20, resource.RLIM_INFINITY))
rng = random.Random(0)
def all_cases():
    yield from (load_reproducer(path) for path in sorted(corpus.glob("*.zip")))
    for _ in range(count):
        yield make_case(RandomChooser(rng), m)
start_rss = peak_rss_mb()
report = run_many(all_cases(), m, Path(tempfile.mkdtemp(dir=folder)), budget_mb=budget_mb)
print(json.dumps({**report.as_dict(), "start_rss_mb": start_rss}))
"""


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The corpus and 300 random cases in a child process whose address space is capped (RLIMIT_AS)."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path_factory.mktemp("capped")), str(CORPUS), "300", str(CAP_MB),
         str(CASE_BUDGET_MB)], capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.splitlines()[-1])


def test_it_keeps_every_case_within_the_memory_cap(capped_run):
    # A case over the cap ends in MemoryError (an escape); one over the budget is an escape too.
    assert capped_run["escapes"] == []
    assert capped_run["cases"] == 300 + len(list(CORPUS.glob("*.zip")))
    assert capped_run["peak_rss_mb"] < capped_run["start_rss_mb"] + CAP_MB


def test_it_reaches_every_outcome_the_library_has(capped_run):
    # The generator is only worth its cases if they get past each check to the next one.
    outcomes = set(capped_run["outcomes"])
    assert {"scored", "not_a_zip", "unsafe_entry", "zip_bomb", "bad_layout", "malformed_json", "malformed_rle",
            "mask_size", "invalid_png", "conflicting_formats", "gt:groundtruth", "gt:loaded/scored"} <= outcomes
