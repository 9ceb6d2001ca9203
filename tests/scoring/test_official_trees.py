"""What the official EgoMask runners write scores unchanged, however it is zipped.

Each runner's tree (tests/scoring/official_trees.py writes exactly what the official code writes,
side files included) must score exactly like the same masks in our canonical layout, and every
layout the scorer cannot read without guessing is an error that says what to change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring import evaluate, load_ground_truth, validate_submission
from scoring.errors import BadLayout, ConflictingFormats
from scoring.synth import synthesize

from .official_trees import (
    canonical,
    write_evaluator_reports,
    write_groundedsam2,
    write_sa2va,
    write_videolisa,
    zip_like_zip_r,
)

RUNNERS = {"groundedsam2": write_groundedsam2, "sa2va": write_sa2va, "videolisa": write_videolisa}
SAVE_ROOTS = {"groundedsam2": "EgoMask-SAM2p1", "sa2va": "EgoMask-Sa2VA-4B", "videolisa": "EgoMask-VideoLISA-3.8B"}
SIDE_OPTIONS = {"groundedsam2": {"vis": True}, "sa2va": {"vis": True}, "videolisa": {"save_overlay": True}}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("official")
    gt = load_ground_truth(synthesize(root / "gt", scale="tiny", seed=21))
    masks = {}
    for n, expression in enumerate(gt.expressions()):
        truth = gt.masks(expression)
        if n % 4 == 3:
            continue  # the model found nothing for every fourth expression
        # A tracker-like prediction: the truth on some frames, a mask on a frame where the object is not.
        frames = [f for f in gt.videos[expression.video].frames]
        own = {f: c for i, (f, c) in enumerate(truth.items()) if i % 3 != 1}
        spare = next((f for f in reversed(frames) if f not in truth), None)
        if spare is not None and n % 2 == 0:
            own[spare] = next(iter(truth.values()))
        masks[(expression.split, expression.video, expression.exp_id)] = {f: own[f] for f in frames if f in own}
    reference = evaluate(gt, canonical(masks, gt, root / "canonical"))
    return gt, masks, reference


def by_key(result):
    return {(r.split, r.video, r.exp_id): (r.missing, r.scores) for r in result.expressions}


def run_tree(bench, tmp_path: Path, runner: str, dataset_types: tuple[str, ...], **options) -> Path:
    """results/<save_root>/<dataset_type>/... in a fresh repository folder, as the runner leaves it."""
    gt, masks, _ = bench
    run = tmp_path / "repo" / "results" / SAVE_ROOTS[runner]
    for dataset_type in dataset_types:
        RUNNERS[runner](gt, masks, run, dataset_type, **options)
    return run


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("dataset_types", [("short", "medium", "long"), ("full",)], ids=["per-split", "full"])
@pytest.mark.parametrize("zipped_from", ["repository", "results", "run", "unzipped"])
def test_it_scores_each_runners_tree_like_the_canonical_layout(bench, tmp_path, runner, dataset_types, zipped_from):
    gt, _, reference = bench
    run = run_tree(bench, tmp_path, runner, dataset_types, **SIDE_OPTIONS[runner])
    for dataset_type in dataset_types:
        write_evaluator_reports(run, dataset_type)
    repo = tmp_path / "repo"
    submission = {
        "repository": lambda: zip_like_zip_r(repo, f"results/{SAVE_ROOTS[runner]}", tmp_path / "x.zip"),
        "results": lambda: zip_like_zip_r(repo / "results", SAVE_ROOTS[runner], tmp_path / "x.zip"),
        "run": lambda: zip_like_zip_r(run, ".", tmp_path / "x.zip"),
        "unzipped": lambda: run,
    }[zipped_from]()
    result = evaluate(gt, submission)
    assert by_key(result) == by_key(reference)
    assert result.as_dict() == reference.as_dict()
    assert result.root == {"repository": f"results/{SAVE_ROOTS[runner]}", "results": SAVE_ROOTS[runner]}.get(
        zipped_from, "")
    codes = [w.code for w in result.warnings]
    assert "side_files" in codes and "missing_expressions" not in codes and "ignored_files" not in codes
    assert ("empty_folders" in codes) == (runner == "videolisa")
    assert validate_submission(submission, gt=gt).ok
    assert validate_submission(submission).ok


def test_it_says_which_side_files_it_ignored_in_one_warning(bench, tmp_path):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "groundedsam2", ("short",), vis=True)
    write_evaluator_reports(run, "short")
    side = [w for w in evaluate(gt, run, split="short").warnings if w.code == "side_files"]
    assert len(side) == 1
    n_files = sum(1 for p in run.rglob("*") if p.is_file() and not p.name.endswith(".json"))
    n_files += sum(1 for p in run.rglob("*_grounding_ret.json")) + 1  # + the evaluator's JSON report
    assert side[0].message.startswith(f"{n_files} file(s) that the official EgoMask tools write beside the masks")


def test_it_scores_an_empty_videolisa_folder_as_an_empty_prediction_not_a_missing_one(bench, tmp_path):
    gt, masks, _ = bench
    run = run_tree(bench, tmp_path, "videolisa", ("short", "medium", "long"))
    result = evaluate(gt, zip_like_zip_r(run, ".", tmp_path / "x.zip"))
    empty = [key for key in by_key(result) if key not in masks]
    assert empty and all(by_key(result)[key][0] is False for key in empty)
    assert all(by_key(result)[key][1].n_pred == 0 for key in empty)
    warning = next(w for w in result.warnings if w.code == "empty_folders")
    assert warning.message.startswith(f"{len(empty)} expression folder(s) hold no mask file")


def test_it_uses_the_file_named_after_the_expressions_object_and_warns_about_the_others(bench, tmp_path):
    gt, _, reference = bench
    run = run_tree(bench, tmp_path, "sa2va", ("short", "medium", "long"))
    expression = next(gt.expressions(("short",)))
    folder = run / "short" / expression.video / expression.exp_id
    (folder / f"{expression.exp_id}-999.json").write_text(json.dumps({}))  # a leftover of another run
    result = evaluate(gt, run)
    assert by_key(result) == by_key(reference)
    extra = [w for w in result.warnings if w.code == "extra_mask_files"]
    assert [w.location.as_dict() for w in extra] == [{"split": "short", "video": expression.video,
                                                      "expression": expression.exp_id}]
    assert f"used {expression.exp_id}-{expression.obj_id}.json" in extra[0].message


def test_it_refuses_two_mask_files_neither_named_after_the_object_and_names_both(bench, tmp_path):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "sa2va", ("short",))
    expression = next(gt.expressions(("short",)))
    folder = run / "short" / expression.video / expression.exp_id
    (folder / f"{expression.exp_id}-{expression.obj_id}.json").rename(folder / "masks_a.json")
    (folder / "masks_b.json").write_text("{}")
    with pytest.raises(ConflictingFormats, match=r"2 RLE JSON files \(masks_a.json, masks_b.json\) and none is "
                                                 rf"named {expression.exp_id}-{expression.obj_id}.json"):
        evaluate(gt, run, split="short")


@pytest.mark.parametrize("folder", ["mid", "middle", "Medium"])
def test_it_refuses_a_misnamed_medium_folder_and_says_what_to_rename(bench, tmp_path, folder):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "groundedsam2", ("short", "medium", "long"))
    (run / "medium").rename(run / folder)
    archive = zip_like_zip_r(tmp_path / "repo", f"results/{SAVE_ROOTS['groundedsam2']}", tmp_path / "x.zip")
    expected = (f"the folder results/EgoMask-SAM2p1/{folder}/ holds videos of the benchmark", "rename it to medium/")
    with pytest.raises(BadLayout) as caught:
        evaluate(gt, archive)
    assert caught.value.message.startswith(expected[0]) and caught.value.message.endswith(expected[1])
    # Without the ground truth (the CLI's check before uploading) the name alone gives it away.
    report = validate_submission(archive)
    assert not report.ok
    assert report.errors[0].message == (f"the folder results/EgoMask-SAM2p1/{folder}/ holds predictions, but "
                                        f"{folder!r} is not a split folder name; rename it to medium/")


@pytest.mark.parametrize("folder", ["val", "test"])
def test_it_names_the_right_split_for_a_val_or_test_folder_from_the_ground_truth(bench, tmp_path, folder):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "sa2va", ("long",))
    (run / "long").rename(run / folder)
    with pytest.raises(BadLayout, match=rf"the folder {folder}/ holds videos of the benchmark .* rename it to long/$"):
        evaluate(gt, run)
    assert "rename it to short/, medium/, long/ or full/" in validate_submission(run).errors[0].message


def test_it_refuses_videos_zipped_without_their_split_folder(bench, tmp_path):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "sa2va", ("short",))
    archive = zip_like_zip_r(run / "short", ".", tmp_path / "x.zip")  # zipped from inside short/
    with pytest.raises(BadLayout, match=r"the videos \(short_000, .*\) are at the top level of the zip, not in a "
                                        r"split folder; put them in short/"):
        evaluate(gt, archive)


def test_it_refuses_videos_in_a_run_folder_without_split_folders(bench, tmp_path):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "sa2va", ("full",))
    for video in (run / "full").iterdir():
        video.rename(run / video.name)
    (run / "full").rmdir()
    with pytest.raises(BadLayout, match=r"are in results/EgoMask-Sa2VA-4B/, not in a split folder; put them in "
                                        r"results/EgoMask-Sa2VA-4B/full/"):
        evaluate(gt, zip_like_zip_r(tmp_path / "repo", "results", tmp_path / "x.zip"))


def test_it_refuses_two_runs_in_one_zip(bench, tmp_path):
    gt, _, _ = bench
    run_tree(bench, tmp_path, "sa2va", ("short",))
    run_tree(bench, tmp_path, "groundedsam2", ("short",))
    with pytest.raises(BadLayout, match=r"split folders in more than one place \(results/EgoMask-SAM2p1/, "
                                        r"results/EgoMask-Sa2VA-4B/\); zip the folder of one run"):
        evaluate(gt, zip_like_zip_r(tmp_path / "repo", "results", tmp_path / "x.zip"))


def test_it_refuses_a_video_under_both_full_and_its_split(bench, tmp_path):
    gt, _, _ = bench
    run = run_tree(bench, tmp_path, "sa2va", ("short", "full"))
    video = next(gt.expressions(("short",))).video
    both = rf"predictions for video {video} in full/{video}/ and short/{video}/; keep one"
    with pytest.raises(BadLayout, match=both):
        evaluate(gt, run)


def test_it_reads_the_split_of_each_video_in_full_from_the_ground_truth(bench, tmp_path):
    gt, _, reference = bench
    run = run_tree(bench, tmp_path, "groundedsam2", ("full",))
    result = evaluate(gt, run, split="medium")
    assert {r.split for r in result.expressions} == {"medium"}
    assert by_key(result) == {k: v for k, v in by_key(reference).items() if k[0] == "medium"}


def test_it_names_the_real_top_level_when_it_finds_no_predictions(tmp_path, bench):
    gt, _, _ = bench
    (tmp_path / "sub" / "results" / "EgoMask-SAM2p1").mkdir(parents=True)
    (tmp_path / "sub" / "results" / "EgoMask-SAM2p1" / "log.txt").write_text("inference done")
    (tmp_path / "sub" / "README.md").write_text("hi")
    message = ("found no predictions: expected <split>/<video>/<exp_id>/<exp_id>-<obj_id>.json (or <frame>.png "
               "masks), with <split> one of short, medium, long, full (full: every video in one folder), optionally "
               "inside wrapping folders; the top level of the zip holds README.md (1 file), results/ (1 file)")
    with pytest.raises(BadLayout) as caught:
        evaluate(gt, zip_like_zip_r(tmp_path / "sub", ".", tmp_path / "x.zip"))
    assert caught.value.message == message


def test_it_accepts_a_tree_copied_from_a_windows_or_mac_machine(bench, tmp_path):
    gt, _, reference = bench
    run = run_tree(bench, tmp_path, "groundedsam2", ("short", "medium", "long"))
    (run / ".DS_Store").write_bytes(b"\0")
    shutil.copytree(run / "short", tmp_path / "repo" / "__MACOSX" / "short")
    assert by_key(evaluate(gt, zip_like_zip_r(tmp_path / "repo", ".", tmp_path / "x.zip"))) == by_key(reference)
