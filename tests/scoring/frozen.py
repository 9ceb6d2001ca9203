"""The frozen reference set: a small fixed benchmark, two submissions, and their expected numbers.

    python -m tests.scoring.frozen            rewrite the expected numbers from the current scorer
    python -m tests.scoring.frozen --inputs   also make the inputs again (a new frozen set)

tests/scoring/test_frozen_numbers.py compares every field of every expression with the files
written here, so any change to any number fails until it is made on purpose: bump SCORER_VERSION
(scoring/evaluation.py), run this module, and commit the new expected files with the reason.

The inputs were made once with `egomask synth` (small scale, seed 2026): the ground truth as a zip
of the published layout, a submission as the official Grounded-SAM2 runner writes it (a tracker
mask on nearly every frame, side files, zipped from the repository root), and one in our own
layout with explicit empty masks and nulls (noisy quality).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from scoring import SCORER_VERSION, evaluate, load_ground_truth
from scoring.synth import synthesize, synthesize_predictions

DATA = Path(__file__).resolve().parent / "data" / "frozen"
GT = DATA / "gt.zip"
SUBMISSIONS = {"groundedsam2": DATA / "groundedsam2.zip", "noisy": DATA / "noisy.zip"}


def expected_csv(name: str) -> Path:
    return DATA / f"{name}.expected.csv"


EXPECTED_JSON = DATA / "expected.json"


def make_inputs() -> None:
    from .official_trees import write_evaluator_reports, write_groundedsam2, zip_like_zip_r

    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        bench = synthesize(base / "egomask", scale="small", seed=2026)
        zip_like_zip_r(base, "egomask", GT)
        gt = load_ground_truth(bench)
        tracker = synthesize_predictions(bench, base / "tracker", quality="tracker", seed=11)
        masks = {}
        for expression in gt.expressions():
            path = tracker / expression.split / expression.video / expression.exp_id / (
                f"{expression.exp_id}-{expression.obj_id}.json")
            body = json.loads(path.read_text())
            masks[(expression.split, expression.video, expression.exp_id)] = {
                frame: mask["counts"] for frame, mask in body.items() if mask is not None}
        run = base / "repo" / "results" / "EgoMask-SAM2p1"
        for split in ("short", "medium", "long"):
            write_groundedsam2(gt, masks, run, split, vis=False)
            write_evaluator_reports(run, split)
        zip_like_zip_r(base / "repo", "results/EgoMask-SAM2p1", SUBMISSIONS["groundedsam2"])
        synthesize_predictions(bench, SUBMISSIONS["noisy"], quality="noisy", seed=12)


def write_expected() -> None:
    gt = load_ground_truth(GT)
    summary: dict[str, object] = {"scorer_version": SCORER_VERSION, "gt_version": gt.version, "submissions": {}}
    for name, path in SUBMISSIONS.items():
        result = evaluate(gt, path)
        rows = [row.as_row() for row in result.expressions]
        with expected_csv(name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            # repr keeps every bit of a float: the comparison is exact.
            writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
        summary["submissions"][name] = {  # type: ignore[index]
            "summaries": {split: {**{m: repr(v) for m, v in s.as_dict().items()}, "n_expressions": s.n_expressions}
                          for split, s in result.summaries.items()},
            "warnings": [w.code for w in result.warnings],
        }
    EXPECTED_JSON.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", action="store_true", help="make the inputs again too (a new frozen set)")
    if parser.parse_args().inputs:
        make_inputs()
    write_expected()
    print(f"wrote the expected numbers for scorer {SCORER_VERSION} in {DATA}")
