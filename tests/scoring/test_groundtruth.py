"""Loading the published ground-truth layout, and refusing broken trees precisely."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from scoring import InvalidGroundTruth, load_ground_truth

from .conftest import box, rle_of, write_gt

FRAMES = ["00000", "00005", "00010"]


def simple(tmp_path, **kwargs):
    videos = {
        "a": {"split": "short", "frames": FRAMES, "expressions": {"0": "1", "1": "2"}},
        "L": {"split": "long", "frames": FRAMES + ["00015"], "expressions": {"0": "1"}},
        "L--3": {"split": "medium", "frames": ["00010", "00015"], "expressions": {"0": "1"}},
    }
    tracks = {
        ("a", "1"): {"00000": box(4, 6, 0, 2, 0, 2)},
        ("a", "2"): {"00005": box(4, 6, 1, 3, 1, 3), "00010": np.zeros((4, 6), bool)},
        ("L", "1"): {"00010": box(4, 6, 0, 1, 0, 6), "00015": box(4, 6, 0, 4, 0, 1)},
    }
    return write_gt(tmp_path / "gt", videos, tracks, **kwargs)


def test_it_loads_the_published_layout(tmp_path):
    gt = load_ground_truth(simple(tmp_path))
    assert gt.splits == ("short", "medium", "long")
    assert [(e.split, e.video, e.exp_id, e.obj_id) for e in gt.expressions()] == [
        ("short", "a", "0", "1"), ("short", "a", "1", "2"), ("medium", "L--3", "0", "1"), ("long", "L", "0", "1"),
    ]
    assert (gt.videos["a"].height, gt.videos["a"].width) == (4, 6)
    assert gt.videos["L--3"].clip == "L"
    medium = next(gt.expressions(("medium",)))
    assert list(gt.masks(medium)) == ["00010", "00015"]
    assert gt.masks(next(gt.expressions(("short",)))) == {"00000": rle_of(box(4, 6, 0, 2, 0, 2))["counts"]}


def test_it_reads_the_combined_meta_file_the_same_way(tmp_path):
    split_files = load_ground_truth(simple(tmp_path / "one"))
    combined = load_ground_truth(simple(tmp_path / "two", combined=True))
    assert list(split_files.expressions()) == list(combined.expressions())
    assert dict(split_files.videos) == dict(combined.videos)


def test_it_versions_the_ground_truth_by_content(tmp_path):
    root = simple(tmp_path)
    first = load_ground_truth(root).version
    assert load_ground_truth(root).version == first
    path = root / "annotations" / "a" / "1.json"
    path.write_text(json.dumps({"00000": rle_of(box(4, 6, 0, 3, 0, 2))}))
    assert load_ground_truth(root).version != first


def test_it_refuses_a_missing_annotation_file(tmp_path):
    root = simple(tmp_path)
    (root / "annotations" / "a" / "2.json").unlink()
    with pytest.raises(InvalidGroundTruth, match="missing annotation file annotations/a/2.json") as info:
        load_ground_truth(root)
    assert (info.value.location.video, info.value.location.expression) == ("a", "1")


def test_it_refuses_an_expression_whose_object_is_never_visible(tmp_path):
    root = simple(tmp_path)
    # Visible only in a frame the medium window does not include.
    (root / "annotations" / "L" / "1.json").write_text(json.dumps({"00000": rle_of(box(4, 6, 0, 1, 0, 1))}))
    with pytest.raises(InvalidGroundTruth, match="not visible in any of the video's frames") as info:
        load_ground_truth(root)
    assert info.value.location.video == "L--3"


def test_it_refuses_inconsistent_mask_sizes_within_a_video(tmp_path):
    root = simple(tmp_path)
    (root / "annotations" / "a" / "2.json").write_text(json.dumps({"00005": rle_of(box(5, 6, 1, 3, 1, 3))}))
    with pytest.raises(InvalidGroundTruth, match="different sizes") as info:
        load_ground_truth(root)
    assert info.value.location.video == "a"


def test_it_refuses_inconsistent_sizes_within_one_annotation_file(tmp_path):
    root = simple(tmp_path)
    masks = {"00000": rle_of(box(4, 6, 0, 1, 0, 1)), "00005": rle_of(box(4, 7, 0, 1, 0, 1))}
    (root / "annotations" / "a" / "1.json").write_text(json.dumps(masks))
    with pytest.raises(InvalidGroundTruth, match="different sizes") as info:
        load_ground_truth(root)
    assert info.value.location.file == "annotations/a/1.json"


def test_it_refuses_malformed_rle_in_the_ground_truth(tmp_path):
    root = simple(tmp_path)
    (root / "annotations" / "a" / "1.json").write_text(json.dumps({"00000": {"size": [4, 6], "counts": "0a"}}))
    with pytest.raises(InvalidGroundTruth, match="malformed RLE") as info:
        load_ground_truth(root)
    assert (info.value.location.file, info.value.location.frame) == ("annotations/a/1.json", "00000")


def test_it_refuses_malformed_json_and_meta(tmp_path):
    root = simple(tmp_path)
    (root / "subset" / "short" / "meta_expressions.json").write_text("{not json")
    with pytest.raises(InvalidGroundTruth, match="not valid JSON"):
        load_ground_truth(root)
    (root / "subset" / "short" / "meta_expressions.json").write_text(json.dumps({"videos": {"a": {"frames": []}}}))
    with pytest.raises(InvalidGroundTruth, match='"frames" must be a non-empty list'):
        load_ground_truth(root)


def test_it_refuses_a_video_without_annotations_folder(tmp_path):
    root = simple(tmp_path)
    shutil.rmtree(root / "annotations" / "L")
    with pytest.raises(InvalidGroundTruth, match="no annotations folder"):
        load_ground_truth(root)


def test_it_refuses_a_tree_without_meta(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidGroundTruth, match=r"no EgoMask ground truth in .*empty: expected annotations/"):
        load_ground_truth(tmp_path / "empty")
    with pytest.raises(InvalidGroundTruth, match="does not exist"):
        load_ground_truth(tmp_path / "nowhere")


def test_it_refuses_a_bad_subset_in_the_combined_file(tmp_path):
    root = simple(tmp_path, combined=True)
    meta = json.loads((root / "meta_expressions.json").read_text())
    meta["videos"]["a"]["subset"] = "huge"
    (root / "meta_expressions.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidGroundTruth, match='"subset" must be one of short, medium, long'):
        load_ground_truth(root)


def test_it_refuses_a_boolean_mask_size_like_a_submission_would(tmp_path):
    root = simple(tmp_path)
    good = rle_of(box(4, 6, 0, 2, 0, 2))
    (root / "annotations" / "a" / "1.json").write_text(json.dumps({"00000": {**good, "size": [True, 6]}}))
    with pytest.raises(InvalidGroundTruth, match="expected an RLE") as info:
        load_ground_truth(root)
    assert info.value.location.frame == "00000"
