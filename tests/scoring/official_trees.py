"""Prediction trees exactly as the official EgoMask code writes them (LaVi-Lab/EgoMask, read there).

All three runners write `<save_root>/<dataset_type>/<video>/<exp_id>/<exp_id>-<obj_id>.json`
with `json.dump(indent=4)` of `{"<frame>": {"size": [h, w], "counts": "<str>"}}`, non-empty
masks only, and leave their own files beside the masks:

- evaluation/groundedsam2: an empty `source_frames/` folder in every expression folder, the mask
  file (`{}` when Grounding DINO found nothing), `<exp_id>-<obj_id>_grounding_ret.json` (frame_idx,
  frame_name, labels, input_boxes) when it found something, `vis/<frame>.jpg` with --vis. Its masks
  come out in the order SAM2 propagated them: from the key frame back to the first, then forward.
- evaluation/sa2va: the mask file (`{}` without [SEG]); `<frame>.jpg` overlays with --vis.
- evaluation/videolisa: the expression folder always, the mask file only when the model returned
  masks; `masked_img_<frame>.jpg` overlays with --save_overlay.
- evaluation/eval_egomask.py: `default_exp_results.json` and `default_exp_results_full_result.jsonl`
  in the `<dataset_type>` folder.

`<dataset_type>` is short, medium, long, or full (every video in one folder). Participants zip
from the repository root (`zip -r x.zip results/EgoMask-SAM2p1`), from the run folder, or from
inside it; `zip_like_zip_r` writes what `zip -r` writes, folder entries included.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

from scoring import GroundTruth

# (split, video, exp_id) -> {frame: compressed counts} of non-empty masks, in frame order
Masks = Mapping[tuple[str, str, str], Mapping[str, str]]
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 32  # an overlay image; the scorer must not read it


def _dump(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        json.dump(value, handle, indent=4)  # evaluation/common_utils.write_json


def _expression_dirs(gt: GroundTruth, run: Path, dataset_type: str):  # type: ignore[no-untyped-def]
    """(expression, its folder, its video) for every expression the runner's job list holds."""
    for expression in gt.expressions(None if dataset_type == "full" else (dataset_type,)):
        video = gt.videos[expression.video]
        yield expression, run / dataset_type / expression.video / expression.exp_id, video


def _body(frames: list[str], masks: Mapping[str, str], size: list[int]) -> dict[str, dict[str, object]]:
    return {frame: {"size": size, "counts": masks[frame]} for frame in frames if frame in masks}


def write_groundedsam2(gt: GroundTruth, masks: Masks, run: Path, dataset_type: str, *, vis: bool = False) -> Path:
    """evaluation/groundedsam2/inference_egomask.py with --grounding_with_max_confidence."""
    for expression, folder, video in _expression_dirs(gt, run, dataset_type):
        (folder / "source_frames").mkdir(parents=True, exist_ok=True)  # left empty when frames need no copying
        own = masks.get((expression.split, expression.video, expression.exp_id), {})
        name = f"{expression.exp_id}-{expression.obj_id}"
        if not own:  # Grounding DINO found nothing: an empty mask file and no grounding result
            _dump(folder / f"{name}.json", {})
            continue
        frames = list(video.frames)
        key = frames.index(next(iter(own)))  # the detection frame: where the first mask is
        order = frames[key::-1] + frames[key + 1 :]  # SAM2 propagated backward to 0, then forward
        _dump(folder / f"{name}.json", _body(order, own, [video.height, video.width]))
        _dump(folder / f"{name}_grounding_ret.json", {
            "frame_idx": key, "frame_name": frames[key], "labels": [expression.text],
            "input_boxes": [1.5, 2.25, float(video.width) - 1, float(video.height) - 1],
        })
        if vis:
            for frame in frames:
                (folder / "vis").mkdir(exist_ok=True)
                (folder / "vis" / f"{frame}.jpg").write_bytes(JPEG)
    return run


def write_sa2va(gt: GroundTruth, masks: Masks, run: Path, dataset_type: str, *, vis: bool = False) -> Path:
    """evaluation/sa2va/inference_egomask.py."""
    for expression, folder, video in _expression_dirs(gt, run, dataset_type):
        folder.mkdir(parents=True, exist_ok=True)
        own = masks.get((expression.split, expression.video, expression.exp_id), {})
        _dump(folder / f"{expression.exp_id}-{expression.obj_id}.json",
              _body(list(video.frames), own, [video.height, video.width]))  # {} without [SEG]
        if vis and own:
            for frame in video.frames:
                (folder / f"{frame}.jpg").write_bytes(JPEG)
    return run


def write_videolisa(gt: GroundTruth, masks: Masks, run: Path, dataset_type: str, *,
                    save_overlay: bool = False) -> Path:
    """evaluation/videolisa/inference_egomask.py: no mask file at all when the model returned no mask."""
    for expression, folder, video in _expression_dirs(gt, run, dataset_type):
        folder.mkdir(parents=True, exist_ok=True)
        own = masks.get((expression.split, expression.video, expression.exp_id), {})
        if not own:
            continue
        _dump(folder / f"{expression.exp_id}-{expression.obj_id}.json",
              _body(list(video.frames), own, [video.height, video.width]))
        if save_overlay:
            for frame in video.frames:
                (folder / f"masked_img_{frame}.jpg").write_bytes(JPEG)
    return run


def write_evaluator_reports(run: Path, dataset_type: str) -> None:
    """What evaluation/eval_egomask.py leaves in <pred_path>/<dataset_type>/ after a run."""
    _dump(run / dataset_type / "default_exp_results.json", {"J": 12.5, "iou_gold_with_pred": 10.0})
    with (run / dataset_type / "default_exp_results_full_result.jsonl").open("w") as handle:
        handle.write(json.dumps({"seq_exp": "v_0_1", "J": 0.125}) + "\n")


def zip_like_zip_r(base: Path, top: str, archive: Path) -> Path:
    """`cd base && zip -r archive top`: folder entries (empty ones included), then files."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        start = base / top if top != "." else base
        for folder, dirs, files in os.walk(start):
            dirs.sort()
            here = Path(folder)
            relative = here.relative_to(base).as_posix()
            if relative != ".":
                out.write(here, relative + "/")
            for name in sorted(files):
                out.write(here / name, (here / name).relative_to(base).as_posix())
    return archive


def canonical(masks: Masks, gt: GroundTruth, root: Path) -> Path:
    """The same masks in our canonical layout, nothing else: <split>/<video>/<exp_id>/<exp_id>-<obj_id>.json
    for every expression ({} where the model found nothing)."""
    for expression in gt.expressions():
        own = masks.get((expression.split, expression.video, expression.exp_id), {})
        video = gt.videos[expression.video]
        name = f"{expression.exp_id}-{expression.obj_id}.json"
        path = root / expression.split / expression.video / expression.exp_id / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_body(list(video.frames), own, [video.height, video.width])))
    return root
