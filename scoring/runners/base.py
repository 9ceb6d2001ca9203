"""What every reference runner reads: the jobs a meta file asks for, their frames, and the shards
they are dealt to (output.py writes what a runner predicts; driver.py runs a model over the jobs).

A runner sees only the benchmark's public inputs (`meta_expressions.json` and the JPEG frames),
never the ground truth. It writes the submission layout the scorer reads:
`<split>/<video>/<exp_id>/<exp_id>-<obj_id>.json` holding `{"<frame>": RLE}` for non-empty masks.

Nothing here imports torch: the model runners import it inside `load`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..groundtruth import SPLITS

Mask = np.ndarray | Mapping[str, Any]  # a 2-D boolean mask, or an RLE dict {"size", "counts"}


class RunnerError(Exception):
    """A run cannot start or go on, for a reason its user can fix: one sentence."""


@dataclass(frozen=True)
class Job:
    """One referring expression to segment: where its frames are and where its masks go."""

    split: str
    video: str
    exp_id: str
    obj_id: str
    expression: str
    clip: str  # the frames folder: a medium video `<clip>--<k>` reads the frames of `<clip>`
    frames: tuple[str, ...]

    @property
    def relative_path(self) -> str:
        return f"{self.split}/{self.video}/{self.exp_id}/{self.exp_id}-{self.obj_id}.json"


class Frames:
    """A job's frames, read one at a time from `<frames>/<clip>/<frame>.jpg` (never all at once).
    Every frame of a video must have one size (masks are written at it)."""

    def __init__(self, folder: Path, job: Job) -> None:
        self.folder = folder / job.clip
        self.names = job.frames
        self.size: tuple[int, int] | None = None  # (height, width), from the first frame read

    def __len__(self) -> int:
        return len(self.names)

    def path(self, index: int) -> Path:
        return self.folder / f"{self.names[index]}.jpg"

    def read(self, index: int) -> np.ndarray:
        """The frame as an (H, W, 3) uint8 RGB array."""
        from PIL import Image

        try:
            with Image.open(self.path(index)) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot read the frame {self.path(index)}: {exc}") from exc
        size = (int(pixels.shape[0]), int(pixels.shape[1]))
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise RunnerError(f"the frame {self.path(index)} is {size[0]}x{size[1]} (height x width), but the "
                              f"video's other frames are {self.size[0]}x{self.size[1]}: every frame of a video "
                              f"must have one size")
        return pixels

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self.names)):
            yield self.read(index)


class Model(Protocol):
    """A loaded runner: masks for one job at a time, frame name → mask, non-empty or not."""

    def predict(self, job: Job, frames: Frames) -> Iterable[tuple[str, Mask]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Runner:
    """A reference runner: what the list shows, and how to load its model."""

    name: str
    description: str
    version: str
    needs_weights: bool
    devices: tuple[str, ...]
    load: Callable[..., Model]  # load(weights=Path | None, device=str, options=Mapping[str, str]) -> Model
    options: Mapping[str, str] = field(default_factory=dict)  # option -> what it does (default)

    def listing(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description, "version": self.version,
                "needs_weights": self.needs_weights, "devices": list(self.devices), "options": dict(self.options)}


# --- the jobs a meta file asks for -----------------------------------------------------------

def frames_root(folder: str | os.PathLike[str]) -> Path:
    """The folder holding one sub-folder of JPEGs per clip: `folder` itself or its `JPEGImages/`."""
    root = Path(folder)
    if (root / "JPEGImages").is_dir():
        return root / "JPEGImages"
    return root


def _check_name(path: Path, what: str, name: str) -> None:
    """An id becomes a file or folder name of the submission: it must stay one name, in its folder."""
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise RunnerError(f"{path}: the {what} {name!r} cannot be a file name (empty, '.', '..', or with a "
                          f"slash): it would be written outside its folder")


def load_jobs(meta_path: str | os.PathLike[str], *, split: str | None = None) -> list[Job]:
    """Every expression of a meta file, in file order. A whole-benchmark file names each video's
    split (`subset`); a split's own file (`subset/<split>/meta_expressions.json`) takes it from
    `split` or from its folder's name. `split` also keeps only that split's videos."""
    path = Path(meta_path)
    if split is not None and split not in SPLITS:
        raise RunnerError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        videos = meta["videos"]
        if not isinstance(videos, dict):
            raise TypeError
    except FileNotFoundError:
        raise RunnerError(f"the meta file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise RunnerError(f"{path} is not a meta_expressions.json file (expected {{\"videos\": {{...}}}})") from None
    folder_split = path.parent.name if path.parent.name in SPLITS else None
    jobs: list[Job] = []
    for video, info in videos.items():
        try:
            video_split = info.get("subset") or split or folder_split
            frames = tuple(str(f) for f in info["frames"])
            expressions = info["expressions"]
            if video_split is None:
                raise RunnerError(f"{path} does not say which split the video {video!r} is in (no \"subset\"): "
                                  f"pass --split")
            if video_split not in SPLITS:
                raise RunnerError(f"{path}: the video {video!r} has an unknown subset {video_split!r}")
            if split is not None and video_split != split:
                continue
            if not frames:
                raise RunnerError(f"{path}: the video {video!r} lists no frames")
            clip = video.split("--")[0] if video_split == "medium" else video
            for name in (video, *frames):
                _check_name(path, "video" if name == video else f"frame of {video!r}", name)
            for exp_id, exp in expressions.items():
                obj_id = exp["obj_id"]
                if isinstance(obj_id, bool) or not isinstance(obj_id, str | int):
                    raise RunnerError(f"{path}: expression {exp_id!r} of {video!r} has obj_id {obj_id!r}, not a "
                                      f"string or a number")
                _check_name(path, f"expression of {video!r}", str(exp_id))
                _check_name(path, f"obj_id of {video!r}/{exp_id}", str(obj_id))
                jobs.append(Job(split=video_split, video=video, exp_id=str(exp_id), obj_id=str(obj_id),
                                expression=str(exp["exp"]), clip=clip, frames=frames))
        except (AttributeError, KeyError, TypeError):
            raise RunnerError(f"{path}: the video {video!r} lacks its frames or its expressions "
                              f"(each needs \"frames\" and \"expressions\" with \"exp\" and \"obj_id\")") from None
    if not jobs:
        raise RunnerError(f"{path} lists no expressions" + (f" in the {split} split" if split else ""))
    return jobs


def check_frames(jobs: Sequence[Job], folder: str | os.PathLike[str]) -> Path:
    """The frames root, once every frame the jobs need is there; else say how many are missing."""
    root = frames_root(folder)
    if not root.is_dir():
        raise RunnerError(f"the frames folder {folder} does not exist")
    needed = {(job.clip, frame) for job in jobs for frame in job.frames}
    listed: dict[str, set[str]] = {}
    missing = []
    for clip, frame in sorted(needed):
        if clip not in listed:
            try:
                listed[clip] = {p.name for p in (root / clip).iterdir()}
            except OSError:
                listed[clip] = set()
        if f"{frame}.jpg" not in listed[clip]:
            missing.append(f"{clip}/{frame}.jpg")
    if missing:
        raise RunnerError(f"the frames folder {root} lacks {len(missing):,} of the {len(needed):,} frames the "
                          f"meta file lists (first: {missing[0]}); it must hold <clip>/<frame>.jpg for every "
                          f"video (a medium video <clip>--<k> reads <clip>/)")
    return root


# --- shards ------------------------------------------------------------------------------------

def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` → (i, n), 0 ≤ i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise RunnerError(f"--shard takes i/n (for example 0/4), not {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise RunnerError(f"--shard {text}: i must be between 0 and n-1, and n at least 1")
    return index, count


def shard(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """The jobs of shard `index` of `count`. Whole videos go to one shard; videos are dealt to the
    least loaded shard, largest first (load: frames × expressions), so the shards finish together.
    Deterministic: the same meta file gives every machine the same split of work."""
    if count == 1:
        return list(jobs)
    cost: dict[str, int] = {}
    for job in jobs:
        cost[job.video] = cost.get(job.video, 0) + len(job.frames)
    load = [0] * count
    owner: dict[str, int] = {}
    for video in sorted(cost, key=lambda v: (-cost[v], v)):
        chosen = min(range(count), key=lambda s: (load[s], s))
        owner[video] = chosen
        load[chosen] += cost[video]
    return [job for job in jobs if owner[job.video] == index]
