"""The example submission the website offers: made from public inputs only, and a valid submission."""

from __future__ import annotations

import io
import json
import zipfile

from scoring import evaluate, load_ground_truth, validate_submission
from scoring.example import example_submission, public_inputs
from scoring.synth import synthesize


def test_it_keeps_no_mask_of_the_ground_truth_in_the_public_inputs(tiny_gt):
    inputs = public_inputs(load_ground_truth(tiny_gt))
    text = json.dumps(inputs)
    assert "counts" not in text and "size" not in text
    video = next(iter(inputs["videos"].values()))
    assert set(video) == {"split", "frames", "height", "width", "expressions"}


def test_it_makes_the_same_example_from_two_benchmarks_that_differ_only_in_their_masks(tmp_path):
    first = synthesize(tmp_path / "a", scale="tiny", seed=1)
    second = synthesize(tmp_path / "b", scale="tiny", seed=1)
    # Same videos, frames and expressions; one object's mask left out on one of its frames.
    annotation = next(p for p in sorted((second / "annotations").rglob("*.json")) if len(json.loads(p.read_text())) > 1)
    body = json.loads(annotation.read_text())
    body.pop(next(iter(body)))
    annotation.write_text(json.dumps(body))
    a, b = load_ground_truth(first), load_ground_truth(second)
    assert a.version != b.version
    assert public_inputs(a) == public_inputs(b)
    assert example_submission(public_inputs(a)) == example_submission(public_inputs(b))


def test_it_is_a_valid_submission_for_every_expression_in_the_official_layout(tiny_gt, tmp_path):
    gt = load_ground_truth(tiny_gt)
    example = tmp_path / "example.zip"
    example.write_bytes(example_submission(public_inputs(gt)))
    names = zipfile.ZipFile(example).namelist()
    assert all(n.startswith("results/EgoMask-example/") and n.endswith(".json") for n in names)
    report = validate_submission(example, gt=gt)
    assert report.ok and report.warnings == ()
    result = evaluate(gt, example)
    assert result.missing == () and len(result.expressions) == len(names) == sum(1 for _ in gt.expressions())
    assert all(row.scores.n_pred == 1 for row in result.expressions)


def test_it_holds_only_the_phases_splits(tiny_gt):
    data = example_submission(public_inputs(load_ground_truth(tiny_gt)), ("long",))
    assert {n.split("/")[2] for n in zipfile.ZipFile(io.BytesIO(data)).namelist()} == {"long"}
