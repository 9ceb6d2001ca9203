"""`egomask eval` / `validate` on what real people have: the published download, official runners' zips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scoring import load_ground_truth
from scoring.synth import synthesize, synthesize_predictions

from .official_trees import write_groundedsam2, zip_like_zip_r


def egomask(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def download_zip(tmp_path: Path) -> Path:
    """dataset/egomask beside dataset/egomask-train, zipped from its parent, as an organizer might."""
    synthesize(tmp_path / "dataset" / "egomask", scale="tiny", seed=3)
    (tmp_path / "dataset" / "egomask-train" / "train").mkdir(parents=True)
    (tmp_path / "dataset" / "egomask-train" / "train" / "mask_dict.json").write_text("{}")
    return zip_like_zip_r(tmp_path, "dataset", tmp_path / "dataset.zip")


def test_it_scores_against_the_zipped_download_and_notes_the_ignored_training_set(tmp_path):
    gt = download_zip(tmp_path)
    pred = synthesize_predictions(tmp_path / "dataset" / "egomask", tmp_path / "pred.zip", quality="good", seed=1)
    done = egomask("eval", "--gt", gt, "--pred", pred, "--json")
    assert done.returncode == 0, done.stderr
    assert "note: ignored dataset/egomask-train/: the training set (EgoMask-Train) is not scored" in done.stderr
    folder = egomask("eval", "--gt", tmp_path / "dataset" / "egomask", "--pred", pred, "--json")
    assert json.loads(done.stdout) == json.loads(folder.stdout)


def test_it_says_where_in_a_wrapped_zip_it_read_the_predictions(tmp_path):
    root = synthesize(tmp_path / "gt", scale="tiny", seed=3)
    gt = load_ground_truth(root)
    masks = {(e.split, e.video, e.exp_id): gt.masks(e) for e in gt.expressions()}
    run = tmp_path / "repo" / "results" / "EgoMask-SAM2p1"
    for split in gt.splits:
        write_groundedsam2(gt, masks, run, split)
    archive = zip_like_zip_r(tmp_path / "repo", "results/EgoMask-SAM2p1", tmp_path / "x.zip")
    done = egomask("eval", "--gt", root, "--pred", archive)
    assert done.returncode == 0, done.stderr
    assert "note: predictions read from results/EgoMask-SAM2p1/ in the submission" in done.stderr
    assert "overall    100.00   100.00    100.00         100.00" in done.stdout
    checked = egomask("validate", "--gt", root, "--pred", archive)
    n = sum(1 for _ in gt.expressions())
    assert checked.returncode == 0 and f"valid: {n} expression(s) with predictions" in checked.stdout


def test_it_counts_the_expressions_it_found_when_the_submission_is_invalid(tmp_path):
    root = synthesize(tmp_path / "gt", scale="tiny", seed=3)
    pred = synthesize_predictions(root, tmp_path / "pred", quality="good", seed=1)
    first = sorted(pred.rglob("*.json"))[0]
    first.write_text('{"00000": {"size": [1, 1], "counts": "1"}}')
    done = egomask("validate", "--gt", root, "--pred", pred)
    n = sum(1 for _ in load_ground_truth(root).expressions())
    assert done.returncode == 1
    assert f"INVALID (1 problem(s)): {n} expression(s) with predictions" in done.stdout


def test_it_keeps_the_parsed_ground_truth_in_its_cache_folder_by_version(tmp_path):
    root = synthesize(tmp_path / "gt", scale="tiny", seed=3)
    pred = synthesize_predictions(root, tmp_path / "pred.zip", quality="noisy", seed=1)
    version = load_ground_truth(root).version
    cache = tmp_path / "cache"
    env = {"EGOMASK_CACHE_DIR": str(cache)}
    uncached = egomask("eval", "--gt", root, "--pred", pred, "--json", "--no-cache", env=env)
    assert uncached.returncode == 0 and not cache.exists()
    first = egomask("eval", "--gt", root, "--pred", pred, "--json", env=env)
    assert [p.name for p in cache.iterdir()] == [f"egomask-gt-1-{version}.npz"]
    second = egomask("eval", "--gt", root, "--pred", pred, "--json", env=env)
    assert json.loads(uncached.stdout) == json.loads(first.stdout) == json.loads(second.stdout)
    # A changed file is a new version: never the old cached masks.
    meta = root / "subset" / "short" / "meta_expressions.json"
    data = json.loads(meta.read_text())
    next(iter(data["videos"].values()))["expressions"].popitem()
    meta.write_text(json.dumps(data))
    changed = egomask("eval", "--gt", root, "--pred", pred, "--json", env=env)
    assert changed.returncode == 0 and json.loads(changed.stdout) != json.loads(first.stdout)
    assert len(list(cache.iterdir())) == 2
