"""Builders for ground-truth trees and submissions made from numpy masks, and synthetic fixtures."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoring import rle
from scoring.synth import synthesize, synthesize_predictions


def rle_of(mask: np.ndarray) -> dict[str, object]:
    """COCO RLE (counts as str) of a 2-D boolean mask."""
    return rle.encode(np.asarray(mask, dtype=bool))


def write_gt(
    root: Path,
    videos: Mapping[str, Mapping[str, object]],
    tracks: Mapping[tuple[str, str], Mapping[str, np.ndarray]],
    combined: bool = False,
) -> Path:
    """Write a ground-truth tree.

    videos: name -> {"split": ..., "frames": [...], "expressions": {exp_id: obj_id}}
    tracks: (clip, obj_id) -> {frame: mask}; all-False masks are skipped (not visible).
    combined: write only the top-level meta_expressions.json (with "subset") instead of subset/.
    """
    for (clip, obj_id), masks in tracks.items():
        folder = root / "annotations" / clip
        folder.mkdir(parents=True, exist_ok=True)
        body = {frame: rle_of(m) for frame, m in masks.items() if np.asarray(m).any()}
        (folder / f"{obj_id}.json").write_text(json.dumps(body))
    per_split: dict[str, dict[str, object]] = {}
    everything: dict[str, object] = {}
    for name, spec in videos.items():
        entry = {
            "frames": list(spec["frames"]),  # type: ignore[arg-type]
            "expressions": {e: {"exp": f"object {o}", "obj_id": o} for e, o in spec["expressions"].items()},  # type: ignore[union-attr]
        }
        per_split.setdefault(str(spec["split"]), {})[name] = entry
        everything[name] = {**entry, "subset": spec["split"]}
    if combined:
        (root / "meta_expressions.json").write_text(json.dumps({"videos": everything}))
    else:
        for split, vids in per_split.items():
            (root / "subset" / split).mkdir(parents=True, exist_ok=True)
            (root / "subset" / split / "meta_expressions.json").write_text(json.dumps({"videos": vids}))
    return root


def write_pred_json(
    root: Path, split: str, video: str, exp_id: str, obj_id: str, masks: Mapping[str, np.ndarray | None | dict]
) -> Path:
    """<split>/<video>/<exp_id>/<exp_id>-<obj_id>.json; a mask may be an array, None, or a raw dict."""
    folder = root / split / video / exp_id
    folder.mkdir(parents=True, exist_ok=True)
    body = {f: (m if m is None or isinstance(m, dict) else rle_of(m)) for f, m in masks.items()}
    path = folder / f"{exp_id}-{obj_id}.json"
    path.write_text(json.dumps(body))
    return path


def png_bytes(mask: np.ndarray, mode: str = "1") -> bytes:
    image = Image.fromarray(np.asarray(mask, dtype=bool)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_pred_png(root: Path, split: str, video: str, exp_id: str, masks: Mapping[str, np.ndarray]) -> None:
    """<split>/<video>/<exp_id>/<frame>.png for each mask."""
    folder = root / split / video / exp_id
    folder.mkdir(parents=True, exist_ok=True)
    for frame, mask in masks.items():
        (folder / f"{frame}.png").write_bytes(png_bytes(mask))


def zip_dir(src: Path, dst: Path, prefix: str = "") -> Path:
    """Zip every file under `src`, optionally under one wrapping folder `prefix`."""
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(src).as_posix())
    return dst


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """A boolean h x w mask, True on rows y0:y1 and columns x0:x1."""
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture(scope="session", autouse=True)
def _own_cache_folder(tmp_path_factory: pytest.TempPathFactory):
    """`egomask eval` keeps parsed ground truth in the user's cache folder: not the tests' user's."""
    previous = os.environ.get("EGOMASK_CACHE_DIR")
    os.environ["EGOMASK_CACHE_DIR"] = str(tmp_path_factory.mktemp("egomask-cache"))
    yield
    if previous is None:
        del os.environ["EGOMASK_CACHE_DIR"]
    else:
        os.environ["EGOMASK_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_gt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic tiny benchmark (all three splits), shared by the session: do not modify."""
    return synthesize(tmp_path_factory.mktemp("tiny") / "gt", scale="tiny", seed=7)


@pytest.fixture(scope="session")
def tiny_predictions(tmp_path_factory: pytest.TempPathFactory, tiny_gt: Path):
    """Factory: (quality, fmt) -> a prediction folder for tiny_gt, made once per session."""
    made: dict[tuple[str, str], Path] = {}

    def get(quality: str = "good", fmt: str = "rle") -> Path:
        if (quality, fmt) not in made:
            out = tmp_path_factory.mktemp(f"pred-{quality}-{fmt}") / "pred"
            made[(quality, fmt)] = synthesize_predictions(tiny_gt, out, quality=quality, fmt=fmt, seed=3)
        return made[(quality, fmt)]

    return get


@pytest.fixture(scope="session")
def tiny_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic tiny benchmark with its JPEG frames (JPEGImages/<clip>/<frame>.jpg): do not modify."""
    return synthesize(tmp_path_factory.mktemp("tiny-frames") / "gt", scale="tiny", seed=7, frames=True)


@pytest.fixture(scope="session")
def public_inputs(tmp_path_factory: pytest.TempPathFactory, tiny_frames: Path) -> Path:
    """What a runner may see of `tiny_frames`: the meta file and the frames, no annotations."""
    root = tmp_path_factory.mktemp("public") / "inputs"
    root.mkdir()
    (root / "meta_expressions.json").write_bytes((tiny_frames / "meta_expressions.json").read_bytes())
    shutil.copytree(tiny_frames / "JPEGImages", root / "JPEGImages")
    return root


@pytest.fixture(scope="session")
def fuzz_kit(tmp_path_factory: pytest.TempPathFactory):
    """The fuzzer's valid inputs (tests/scoring/fuzzkit): the tiny benchmark and its submissions, made once."""
    from .fuzzkit import materials

    return materials(tmp_path_factory.mktemp("fuzz"))
