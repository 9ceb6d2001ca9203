"""The ground truth as published: `hf download XuuuXYZ/EgoMask --repo-type dataset --local-dir dataset`.

That gives dataset/egomask/ (annotations/, subset/<split>/meta_expressions.json and meta.json,
meta_expressions.json, meta.json) possibly beside dataset/egomask-train/ (meta_expressions/train/
meta_expressions.json, train/mask_dict.json, train/meta.json), plus the hub's own .cache/ folder.
It loads as any of those folders or as a zip of them, with the same version and content; the
training set is ignored with a note.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring import InvalidGroundTruth, evaluate, load_ground_truth
from scoring.synth import synthesize, synthesize_predictions

from .official_trees import zip_like_zip_r


@pytest.fixture(scope="module")
def download(tmp_path_factory) -> Path:
    """dataset/ as the hub download leaves it, around a tiny synthetic benchmark."""
    base = tmp_path_factory.mktemp("hub")
    bench = synthesize(base / "src", scale="tiny", seed=5)
    dataset = base / "dataset"
    shutil.copytree(bench, dataset / "egomask")
    everything = json.loads((dataset / "egomask" / "meta_expressions.json").read_text())["videos"]
    (dataset / "egomask" / "meta.json").write_text(json.dumps({"videos": {
        name: {"subset": video["subset"], "frames": video["frames"]} for name, video in everything.items()}}))
    for split in ("short", "long"):
        (dataset / "egomask" / "subset" / split / "meta.json").write_text("{}")
    train = dataset / "egomask-train"
    (train / "meta_expressions" / "train").mkdir(parents=True)
    (train / "meta_expressions" / "train" / "meta_expressions.json").write_text(json.dumps({"videos": {}}))
    (train / "train").mkdir()
    (train / "train" / "mask_dict.json").write_text("{}")
    (train / "train" / "meta.json").write_text("{}")
    (dataset / ".cache" / "huggingface" / "download").mkdir(parents=True)
    (dataset / ".cache" / "huggingface" / ".gitignore").write_text("*\n")
    (dataset / ".gitattributes").write_text("*.json filter=lfs\n")
    return dataset


def test_it_loads_every_form_of_the_download_with_the_same_version(download, tmp_path):
    forms = {
        "egomask folder": download / "egomask",
        "dataset folder": download,
        "zip of dataset/": zip_like_zip_r(download.parent, "dataset", tmp_path / "dataset.zip"),
        "zip of egomask/": zip_like_zip_r(download, "egomask", tmp_path / "egomask.zip"),
        "zip from inside egomask/": zip_like_zip_r(download / "egomask", ".", tmp_path / "inside.zip"),
    }
    loaded = {name: load_ground_truth(path) for name, path in forms.items()}
    reference = loaded["egomask folder"]
    for name, gt in loaded.items():
        assert gt.version == reference.version, name
        assert dict(gt.videos) == dict(reference.videos), name
        assert {e.video: gt.masks(e) for e in gt.expressions()} == {
            e.video: reference.masks(e) for e in reference.expressions()}, name


def test_it_ignores_the_training_set_with_a_note(download, tmp_path):
    assert load_ground_truth(download / "egomask").notes == ()
    note = ("ignored egomask-train/: the training set (EgoMask-Train) is not scored",)
    assert load_ground_truth(download).notes == note
    archive = zip_like_zip_r(download.parent, "dataset", tmp_path / "dataset.zip")
    assert load_ground_truth(archive).notes == ("ignored dataset/egomask-train/: the training set (EgoMask-Train) "
                                                "is not scored",)


def test_it_scores_the_same_against_the_folder_and_the_zip(download, tmp_path):
    predictions = synthesize_predictions(download / "egomask", tmp_path / "pred.zip", quality="noisy", seed=2)
    folder = evaluate(load_ground_truth(download / "egomask"), predictions)
    archive = evaluate(load_ground_truth(zip_like_zip_r(download.parent, "dataset", tmp_path / "d.zip")), predictions)
    assert folder.as_dict() == archive.as_dict()
    assert folder.expressions == archive.expressions


def test_it_refuses_a_folder_with_two_benchmarks(download, tmp_path):
    shutil.copytree(download / "egomask", tmp_path / "both" / "egomask")
    shutil.copytree(download / "egomask", tmp_path / "both" / "copy")
    with pytest.raises(InvalidGroundTruth, match=r"holds more than one benchmark \(copy/, egomask/\)"):
        load_ground_truth(tmp_path / "both")


def test_it_says_what_it_looked_for_in_a_folder_without_a_benchmark(download):
    with pytest.raises(InvalidGroundTruth, match=r"no EgoMask ground truth in .*egomask-train: expected "
                                                 r"annotations/<clip>/<obj_id>.json and subset/<split>/"):
        load_ground_truth(download / "egomask-train")


def test_it_refuses_a_zip_that_is_not_one(tmp_path):
    (tmp_path / "gt.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InvalidGroundTruth, match="cannot read the ground truth: .*not a zip archive"):
        load_ground_truth(tmp_path / "gt.zip")
