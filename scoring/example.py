"""What participants may see of a benchmark, and an example submission made from only that.

`public_inputs(gt)` keeps what the benchmark publishes to participants anyway (videos, their
split, frame names and size, expressions and their obj_id) and drops every mask. The example
submission is built from those inputs alone, so it can be served by the website without the
hidden ground truth ever being read: a box in the middle of the middle frame of each expression,
written exactly as the official runners write their files (`<exp_id>-<obj_id>.json`, indent=4).
It is valid and scores, badly, by design.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import rle
from .groundtruth import SPLITS, GroundTruth

PUBLIC_FORMAT = 1


def public_inputs(gt: GroundTruth) -> dict[str, Any]:
    """The benchmark without its masks: {"format", "videos": {name: {split, frames, height, width, expressions}}}."""
    return {
        "format": PUBLIC_FORMAT,
        "videos": {
            name: {
                "split": video.split,
                "frames": list(video.frames),
                "height": video.height,
                "width": video.width,
                "expressions": {e.exp_id: {"exp": e.text, "obj_id": e.obj_id} for e in video.expressions},
            }
            for name, video in sorted(gt.videos.items())
        },
    }


def _box(height: int, width: int) -> str:
    """Compressed counts of a box covering the middle ninth of a frame."""
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 3 : max(height // 3 + 1, 2 * height // 3), width // 3 : max(width // 3 + 1, 2 * width // 3)] = True
    return str(rle.encode(mask)["counts"])


def example_submission(inputs: Mapping[str, Any], splits: tuple[str, ...] = SPLITS, *,
                       wrapper: str = "results/EgoMask-example") -> bytes:
    """A zip in the official runners' layout for the given public inputs (see public_inputs)."""
    buffer = io.BytesIO()
    boxes: dict[tuple[int, int], str] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, video in sorted(inputs["videos"].items()):
            if video["split"] not in splits:
                continue
            size = (int(video["height"]), int(video["width"]))
            counts = boxes.setdefault(size, _box(*size))
            middle = video["frames"][len(video["frames"]) // 2]
            for exp_id, expression in video["expressions"].items():
                body = {middle: {"size": list(size), "counts": counts}}
                path = f"{wrapper}/{video['split']}/{name}/{exp_id}/{exp_id}-{expression['obj_id']}.json"
                archive.writestr(path, json.dumps(body, indent=4))
    return buffer.getvalue()


def write_example(inputs: Mapping[str, Any], out: str | Path, splits: tuple[str, ...] = SPLITS) -> Path:
    out = Path(out)
    out.write_bytes(example_submission(inputs, splits))
    return out
