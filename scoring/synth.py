"""Synthetic EgoMask benchmarks and predictions, in the published layout.

The ground truth imitates the paper's egocentric statistics: an object is visible in ~20% of the
frames, in many short trajectories (~1.3% of the video each), its mask covers ~1% of the frame,
and it jumps between frames (adjacent-frame IoU around 0.15). Medium videos are windows cut from
the long ones (`<clip>--<k>`) and share their annotations.

Masks are ellipses written straight to run-length form column by column, so no full frame is
ever allocated unless JPEG frames (`frames=True`) or PNG predictions are asked for.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import rle
from .groundtruth import SPLITS, GroundTruth, load_ground_truth


@dataclass(frozen=True)
class Scale:
    height: int
    width: int
    videos: dict[str, int]
    expressions: dict[str, int]
    frames: dict[str, tuple[int, int]]  # inclusive range of frame counts per video


SCALES: dict[str, Scale] = {
    "tiny": Scale(36, 64, {"short": 3, "medium": 2, "long": 1}, {"short": 5, "medium": 3, "long": 3},
                  {"short": (6, 10), "medium": (12, 20), "long": (24, 36)}),
    "small": Scale(270, 480, {"short": 20, "medium": 10, "long": 3}, {"short": 40, "medium": 20, "long": 12},
                   {"short": (20, 60), "medium": (60, 120), "long": (120, 240)}),
    "full": Scale(1080, 1920, {"short": 200, "medium": 100, "long": 15}, {"short": 400, "medium": 200, "long": 100},
                  {"short": (20, 60), "medium": (60, 180), "long": (180, 480)}),
}

_COLORS = {
    "red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 200), "yellow": (230, 200, 40),
    "orange": (235, 130, 30), "purple": (130, 50, 170), "white": (235, 235, 235), "black": (25, 25, 25),
}
_NOUNS = ("mug", "knife", "bowl", "phone", "cutting board", "bottle", "towel", "screwdriver", "lid", "sponge",
          "spoon", "pan", "glove", "tape measure", "paintbrush", "jar")
_PLACES = ("on the left", "on the counter", "that the person picks up", "near the sink", "on the table",
           "in the drawer", "next to the stove", "the person is holding", "on the shelf", "by the window")


@dataclass
class _Object:
    obj_id: str
    color: str
    noun: str
    # frame index -> ellipse (cx, cy, a, b), only where visible
    ellipses: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)


@dataclass
class _Clip:
    name: str
    frames: list[str]
    objects: list[_Object]


def ellipse_runs(cx: float, cy: float, a: float, b: float, height: int, width: int) -> np.ndarray:
    """Run lengths (zeros first, column-major like COCO RLE) of a filled axis-aligned ellipse."""
    x = np.arange(max(0, math.ceil(cx - a - 0.5)), min(width, math.floor(cx + a - 0.5) + 1))
    half = b * np.sqrt(np.clip(1.0 - ((x + 0.5 - cx) / a) ** 2, 0.0, None))
    y0 = np.maximum(np.ceil(cy - half - 0.5), 0).astype(np.int64)
    y1 = np.minimum(np.floor(cy + half - 0.5), height - 1).astype(np.int64)
    keep = y1 >= y0
    starts = x[keep] * height + y0[keep]
    ends = x[keep] * height + y1[keep] + 1
    return runs_from_intervals(starts, ends, height * width)


def runs_from_intervals(starts: np.ndarray, ends: np.ndarray, total: int) -> np.ndarray:
    """Run lengths of the union of [start, end) intervals on a line of `total` pixels."""
    starts = np.clip(np.asarray(starts, dtype=np.int64), 0, total)
    ends = np.clip(np.asarray(ends, dtype=np.int64), 0, total)
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return np.array([total], dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    # Merge intervals that touch or overlap the one before.
    new = np.concatenate(([True], starts[1:] > ends[:-1]))
    group = np.cumsum(new) - 1
    merged_starts = starts[new]
    merged_ends = np.zeros(merged_starts.size, dtype=np.int64)
    np.maximum.at(merged_ends, group, ends)
    bounds = np.empty(2 * merged_starts.size, dtype=np.int64)
    bounds[0::2], bounds[1::2] = merged_starts, merged_ends
    return np.diff(np.concatenate(([0], bounds, [total])))


def _trajectories(rng: np.random.Generator, n: int) -> list[list[int]]:
    """Runs of consecutive visible frame indices: ~20% presence in ~1.3%-long trajectories."""
    presence = float(np.clip(rng.normal(0.21, 0.07), 0.06, 0.45))
    mean_length = max(1.0, 0.013 * n * rng.uniform(0.6, 1.6))
    count = max(1, round(presence * n / mean_length))
    visible: set[int] = set()
    for _ in range(count):
        length = int(rng.geometric(1.0 / mean_length))
        start = int(rng.integers(0, n))
        visible.update(range(start, min(n, start + length)))
    ordered = sorted(visible)
    runs: list[list[int]] = []
    for i in ordered:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _object(rng: np.random.Generator, obj_id: str, n: int, height: int, width: int) -> _Object:
    obj = _Object(obj_id, str(rng.choice(list(_COLORS))), str(rng.choice(_NOUNS)))
    for run in _trajectories(rng, n):
        fraction = float(np.clip(rng.lognormal(math.log(0.01), 0.5), 0.002, 0.05))
        aspect = float(rng.uniform(0.5, 2.0))
        area = fraction * height * width
        a = max(1.5, math.sqrt(area / math.pi * aspect))
        b = max(1.5, math.sqrt(area / math.pi / aspect))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        for i in run:
            obj.ellipses[i] = (cx, cy, a, b)
            # Head motion in egocentric video: big jumps, so adjacent masks barely overlap.
            cx = float(np.clip(cx + rng.normal(0, 1.1 * a), 0, width - 1))
            cy = float(np.clip(cy + rng.normal(0, 1.1 * b), 0, height - 1))
            scale = float(rng.uniform(0.8, 1.25))
            a, b = max(1.5, a * scale), max(1.5, b * scale)
    return obj


def _frame_names(n: int) -> list[str]:
    return [f"{5 * i:05d}" for i in range(n)]


def _split_counts(total: int, parts: int, rng: np.random.Generator) -> list[int]:
    """`total` items over `parts` holders, each at least one, as evenly as a shuffle allows."""
    base = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    rng.shuffle(base)
    return [max(1, b) for b in base]


def _text(obj: _Object, rng: np.random.Generator) -> str:
    return f"the {obj.color} {obj.noun} {rng.choice(_PLACES)}"


def synthesize(out: str | Path, *, scale: str = "tiny", seed: int = 0, frames: bool = False) -> Path:
    """Write a synthetic ground-truth tree to `out` and return its path."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    spec = SCALES[scale]
    rng = np.random.default_rng(seed)
    h, w = spec.height, spec.width
    out = Path(out)
    meta: dict[str, dict[str, dict]] = {split: {} for split in SPLITS}
    clips: list[_Clip] = []

    # Long videos, each with one object per expression plus a few that only medium clips refer to.
    long_exps = _split_counts(spec.expressions["long"], spec.videos["long"], rng)
    for i, n_exp in enumerate(long_exps):
        n = int(rng.integers(spec.frames["long"][0], spec.frames["long"][1] + 1))
        clip = _Clip(f"long_{i:03d}", _frame_names(n), [])
        clip.objects = [_object(rng, str(k), n, h, w) for k in range(n_exp + 3)]
        clips.append(clip)
        meta["long"][clip.name] = {
            "frames": clip.frames,
            "expressions": {
                str(k): {"exp": _text(o, rng), "obj_id": o.obj_id} for k, o in enumerate(clip.objects[:n_exp])
            },
        }

    # Medium videos: windows of the long videos that contain the referred objects.
    long_clips = list(clips)
    medium_exps = _split_counts(spec.expressions["medium"], spec.videos["medium"], rng)
    for k, n_exp in enumerate(medium_exps):
        clip = long_clips[k % len(long_clips)]
        length = min(len(clip.frames), int(rng.integers(spec.frames["medium"][0], spec.frames["medium"][1] + 1)))
        anchor_obj = clip.objects[int(rng.integers(len(clip.objects)))]
        anchor = int(rng.choice(sorted(anchor_obj.ellipses)))
        start = int(rng.integers(max(0, anchor - length + 1), min(anchor, len(clip.frames) - length) + 1))
        window = range(start, start + length)
        visible = [o for o in clip.objects if any(i in o.ellipses for i in window)]
        chosen = [anchor_obj] + [visible[int(j)] for j in rng.integers(0, len(visible), n_exp - 1)]
        meta["medium"][f"{clip.name}--{k}"] = {
            "frames": clip.frames[start : start + length],
            "expressions": {str(j): {"exp": _text(o, rng), "obj_id": o.obj_id} for j, o in enumerate(chosen)},
        }

    # Short videos: clips of their own.
    short_exps = _split_counts(spec.expressions["short"], spec.videos["short"], rng)
    for i, n_exp in enumerate(short_exps):
        n = int(rng.integers(spec.frames["short"][0], spec.frames["short"][1] + 1))
        clip = _Clip(f"short_{i:03d}", _frame_names(n), [])
        clip.objects = [_object(rng, str(k), n, h, w) for k in range(max(1, n_exp - int(rng.integers(0, 2))))]
        clips.append(clip)
        meta["short"][clip.name] = {
            "frames": clip.frames,
            "expressions": {str(j): {"exp": _text(clip.objects[j % len(clip.objects)], rng),
                                     "obj_id": clip.objects[j % len(clip.objects)].obj_id} for j in range(n_exp)},
        }

    for clip in clips:
        folder = out / "annotations" / clip.name
        folder.mkdir(parents=True, exist_ok=True)
        for obj in clip.objects:
            masks = {clip.frames[i]: {"size": [h, w], "counts": rle.compress(ellipse_runs(*e, h, w), h, w)}
                     for i, e in sorted(obj.ellipses.items())}
            (folder / f"{obj.obj_id}.json").write_text(json.dumps(masks))
    everything = {}
    for split in SPLITS:
        (out / "subset" / split).mkdir(parents=True, exist_ok=True)
        (out / "subset" / split / "meta_expressions.json").write_text(json.dumps({"videos": meta[split]}, indent=1))
        everything.update({name: {**video, "subset": split} for name, video in meta[split].items()})
    (out / "meta_expressions.json").write_text(json.dumps({"videos": everything}, indent=1))
    if frames:
        for clip in clips:
            _render_frames(out / "JPEGImages" / clip.name, clip, h, w, rng)
    return out


def _render_frames(folder: Path, clip: _Clip, h: int, w: int, rng: np.random.Generator) -> None:
    """JPEG frames: a textured background with each visible object painted in its colour."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    texture = rng.integers(60, 160, size=(max(2, h // 60), max(2, w // 60), 3), dtype=np.uint8)
    background = np.asarray(Image.fromarray(texture).resize((w, h), Image.Resampling.BILINEAR))
    for i, frame in enumerate(clip.frames):
        pixels = background.copy()
        for obj in clip.objects:
            if i in obj.ellipses:
                runs = ellipse_runs(*obj.ellipses[i], h, w)
                dense = rle.decode({"size": [h, w], "counts": rle.compress(runs, h, w)}).astype(bool)
                pixels[dense] = _COLORS[obj.color]
        Image.fromarray(pixels).save(folder / f"{frame}.jpg", quality=85)


# --- predictions -----------------------------------------------------------------------------

QUALITIES: dict[str, tuple[float, float, float]] = {
    # hit rate on visible frames, jitter (fraction of object size), false-positive rate elsewhere
    "perfect": (1.0, 0.0, 0.0),
    "good": (0.9, 0.12, 0.03),
    "noisy": (0.6, 0.5, 0.15),
    # A detector that fires on a third of the frames where the object is absent.
    "hallucinating": (0.9, 0.12, 0.33),
    # A tracker propagated from a key frame (Grounded-SAM2): a mask on every frame, drifting
    # where the object is absent, so several times the ground truth's masks.
    "tracker": (0.9, 0.12, 1.0),
    "empty": (0.0, 0.0, 0.0),
}


def _perturb(runs: np.ndarray, rng: np.random.Generator, jitter: float, height: int, total: int) -> np.ndarray:
    """Shift and grow/shrink a mask in run-length space: no frame is decoded."""
    bounds = np.cumsum(runs)[:-1]
    starts, ends = bounds[0::2], bounds[1::2]
    size = math.sqrt(max(1, int((ends - starts).sum())))
    dx, dy = (int(round(v)) for v in rng.normal(0, jitter * size, 2))
    grow = int(round(rng.normal(0, jitter * size / 3)))
    shift = dx * height + dy
    return runs_from_intervals(starts + shift - grow, ends + shift + grow, total)


def _predicted(gt: GroundTruth, quality: str, rng: np.random.Generator) -> Iterator[tuple[str, str, str, str, dict]]:
    """(split, video, exp_id, obj_id, {frame: counts or None}) for every expression."""
    hit, jitter, false_positive = QUALITIES[quality]
    for expression in gt.expressions():
        video = gt.videos[expression.video]
        h, w = video.height, video.width
        truth = gt.mask_indices(expression)
        masks: dict[str, str | None] = {}
        if quality == "empty":
            # Explicit "nothing here" entries, which must count exactly like omitted frames.
            empty = rle.compress([h * w], h, w)
            masks = {f: (None if i % 2 else empty) for i, f in enumerate(video.frames[:4])}
        side = math.sqrt(0.01 * h * w / math.pi)
        if quality == "tracker":  # where the drifting tracker's mask is
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        for frame in video.frames:
            if frame in truth and rng.random() < hit:
                runs = gt.runs.runs(truth[frame])
                masks[frame] = rle.compress(runs if jitter == 0 else _perturb(runs, rng, jitter, h, h * w), h, w)
            elif (frame not in truth or quality == "tracker") and rng.random() < false_positive:
                if quality == "tracker":
                    cx = float(np.clip(cx + rng.normal(0, side / 3), side, w - side))
                    cy = float(np.clip(cy + rng.normal(0, side / 3), side, h - side))
                else:
                    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
                runs = ellipse_runs(cx, cy, side, side, h, w)
                masks[frame] = rle.compress(runs, h, w)
        yield expression.split, expression.video, expression.exp_id, expression.obj_id, masks


def synthesize_predictions(
    gt_root: str | Path, out: str | Path, *, quality: str = "good", fmt: str = "rle", seed: int = 0
) -> Path:
    """Write predictions for the benchmark at `gt_root` into a folder, or a zip if `out` ends in .zip."""
    if quality not in QUALITIES:
        raise ValueError(f"unknown quality {quality!r}; choose one of {', '.join(QUALITIES)}")
    if fmt not in ("rle", "png"):
        raise ValueError("format must be rle or png")
    from PIL import Image  # PNG masks only

    gt = load_ground_truth(gt_root)
    rng = np.random.default_rng(seed)
    out = Path(out)
    archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) if out.suffix == ".zip" else None

    def write(relative: str, data: bytes) -> None:
        if archive is not None:
            archive.writestr(relative, data)
        else:
            path = out / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    try:
        for split, video_name, exp_id, obj_id, masks in _predicted(gt, quality, rng):
            video = gt.videos[video_name]
            folder = f"{split}/{video_name}/{exp_id}"
            size = [video.height, video.width]
            if fmt == "rle":
                body = {f: (None if c is None else {"size": size, "counts": c}) for f, c in masks.items()}
                write(f"{folder}/{exp_id}-{obj_id}.json", json.dumps(body).encode())
                continue
            if archive is None:
                (out / folder).mkdir(parents=True, exist_ok=True)
            for frame, counts in masks.items():
                if counts is None:
                    continue
                dense = rle.decode({"size": size, "counts": counts}).astype(bool)
                if dense.any() or quality == "empty":
                    buffer = io.BytesIO()
                    Image.fromarray(dense).save(buffer, format="PNG")
                    write(f"{folder}/{frame}.png", buffer.getvalue())
    finally:
        if archive is not None:
            archive.close()
    return out
