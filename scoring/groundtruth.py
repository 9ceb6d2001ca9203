"""Load the published EgoMask ground-truth layout into plain, immutable objects.

    ROOT/annotations/<clip>/<obj_id>.json        {"<frame>": RLE, ...}, visible frames only
    ROOT/subset/<split>/meta_expressions.json    one per split (preferred), or
    ROOT/meta_expressions.json                   all splits, each video carrying "subset"

A medium video `<clip>--<k>` is cut from the long video `<clip>` and uses its annotations; only
the frames in a video's own `frames` list count. A broken tree is refused with InvalidGroundTruth
naming the file, video and expression concerned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from . import rle
from .errors import InvalidGroundTruth, Location

SPLITS: tuple[str, ...] = ("short", "medium", "long")


@dataclass(frozen=True)
class Expression:
    """One referring expression: what is scored."""

    split: str
    video: str
    exp_id: str
    text: str
    obj_id: str


@dataclass(frozen=True)
class Video:
    name: str
    split: str
    clip: str  # the annotations folder it uses (itself, or the long video a medium clip comes from)
    frames: tuple[str, ...]
    height: int
    width: int
    expressions: tuple[Expression, ...]


@dataclass(frozen=True)
class ObjectTrack:
    """The ground-truth masks of one object: frame -> compressed counts, non-empty masks only."""

    clip: str
    obj_id: str
    height: int
    width: int
    masks: Mapping[str, str]


@dataclass(frozen=True)
class GroundTruth:
    root: str
    videos: Mapping[str, Video]
    tracks: Mapping[tuple[str, str], ObjectTrack]
    version: str  # sha256 over every file read: changes whenever the ground truth does

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that have at least one expression, in canonical order."""
        present = {video.split for video in self.videos.values() if video.expressions}
        return tuple(s for s in SPLITS if s in present)

    def expressions(self, splits: tuple[str, ...] | None = None) -> Iterator[Expression]:
        """Every expression of the given splits (default all), in a stable order."""
        wanted = splits or SPLITS
        for split in SPLITS:
            if split not in wanted:
                continue
            for video in self.videos.values():
                if video.split == split:
                    yield from video.expressions

    def masks(self, expression: Expression) -> dict[str, str]:
        """Ground-truth masks of an expression, restricted to its video's frames."""
        video = self.videos[expression.video]
        track = self.tracks[(video.clip, expression.obj_id)]
        return {frame: track.masks[frame] for frame in video.frames if frame in track.masks}


def load_ground_truth(root: str | Path) -> GroundTruth:
    """Read and check a ground-truth tree. Raises InvalidGroundTruth with a precise message."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidGroundTruth(f"ground-truth folder {root} does not exist")
    digest = hashlib.sha256()

    def read_json(path: Path) -> object:
        relative = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidGroundTruth(f"cannot read: {exc.strerror}", Location(file=relative)) from None
        digest.update(relative.encode() + b"\0" + data + b"\0")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise InvalidGroundTruth(f"not valid JSON ({exc})", Location(file=relative)) from None

    meta = _read_meta(root, read_json)
    videos: dict[str, Video] = {}
    tracks: dict[tuple[str, str], ObjectTrack] = {}
    for name, split, frames, raw_expressions, meta_file in meta:
        clip = _clip_of(root, name, meta_file)
        expressions = []
        for exp_id, obj_id, text in raw_expressions:
            where = Location(file=meta_file, split=split, video=name, expression=exp_id)
            key = (clip, obj_id)
            if key not in tracks:
                tracks[key] = _load_track(root, clip, obj_id, read_json, where)
            expressions.append(Expression(split=split, video=name, exp_id=exp_id, text=text, obj_id=obj_id))
        frame_set = set(frames)
        for expression in expressions:
            if not frame_set.intersection(tracks[(clip, expression.obj_id)].masks):
                raise InvalidGroundTruth(
                    f"the object (obj_id {expression.obj_id}) is not visible in any of the video's frames",
                    Location(file=f"annotations/{clip}/{expression.obj_id}.json", split=split, video=name,
                             expression=expression.exp_id),
                )
        sizes = {(tracks[(clip, e.obj_id)].height, tracks[(clip, e.obj_id)].width) for e in expressions}
        if len(sizes) > 1:
            raise InvalidGroundTruth(
                f"masks of different sizes in one video: {sorted(sizes)}", Location(split=split, video=name)
            )
        height, width = sizes.pop() if sizes else (0, 0)
        video = Video(name, split, clip, frames, height, width, tuple(expressions))
        videos[name] = video
    return GroundTruth(
        root=str(root),
        videos=MappingProxyType(videos),
        tracks=MappingProxyType(tracks),
        version=digest.hexdigest(),
    )


_Meta = list[tuple[str, str, tuple[str, ...], list[tuple[str, str, str]], str]]


def _read_meta(root: Path, read_json) -> _Meta:  # type: ignore[no-untyped-def]
    """(video, split, frames, [(exp_id, obj_id, text)], meta file) for every video."""
    per_split = {split: root / "subset" / split / "meta_expressions.json" for split in SPLITS}
    sources: list[tuple[Path, str | None]] = [(path, split) for split, path in per_split.items() if path.is_file()]
    if not sources:
        combined = root / "meta_expressions.json"
        if not combined.is_file():
            raise InvalidGroundTruth(
                f"no meta_expressions.json in {root} (looked for subset/<split>/meta_expressions.json "
                "and meta_expressions.json)"
            )
        sources = [(combined, None)]
    out: _Meta = []
    seen: dict[str, str] = {}
    for path, split in sources:
        relative = path.relative_to(root).as_posix()
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("videos"), dict):
            raise InvalidGroundTruth('expected {"videos": {...}}', Location(file=relative))
        for name, video in data["videos"].items():
            where = Location(file=relative, video=name)
            if not isinstance(video, dict):
                raise InvalidGroundTruth("a video entry must be an object", where)
            video_split = split if split is not None else video.get("subset")
            if video_split not in SPLITS:
                raise InvalidGroundTruth(f'"subset" must be one of {", ".join(SPLITS)}, not {video_split!r}', where)
            if name in seen:
                raise InvalidGroundTruth(f"video listed twice (also in {seen[name]})", where)
            seen[name] = relative
            frames = video.get("frames")
            if not isinstance(frames, list) or not frames or not all(isinstance(f, str) for f in frames):
                raise InvalidGroundTruth('"frames" must be a non-empty list of frame names', where)
            if len(set(frames)) != len(frames):
                raise InvalidGroundTruth('"frames" lists a frame twice', where)
            raw = video.get("expressions")
            if not isinstance(raw, dict):
                raise InvalidGroundTruth('"expressions" must be an object', where)
            expressions = []
            for exp_id, expression in raw.items():
                ewhere = Location(file=relative, video=name, expression=exp_id)
                if not isinstance(expression, dict) or not isinstance(expression.get("obj_id"), (str, int)):
                    raise InvalidGroundTruth('an expression needs an "obj_id"', ewhere)
                text = expression.get("exp", "")
                expressions.append((str(exp_id), str(expression["obj_id"]), text if isinstance(text, str) else ""))
            out.append((name, video_split, tuple(frames), expressions, relative))
    return out


def _clip_of(root: Path, video: str, meta_file: str) -> str:
    if (root / "annotations" / video).is_dir():
        return video
    if "--" in video:
        clip = video.rsplit("--", 1)[0]
        if (root / "annotations" / clip).is_dir():
            return clip
    raise InvalidGroundTruth(
        f"no annotations folder for this video (annotations/{video}/)", Location(file=meta_file, video=video)
    )


def _load_track(root: Path, clip: str, obj_id: str, read_json, where: Location) -> ObjectTrack:  # type: ignore[no-untyped-def]
    relative = f"annotations/{clip}/{obj_id}.json"
    path = root / relative
    if not path.is_file():
        raise InvalidGroundTruth(f"missing annotation file {relative}", where)
    data = read_json(path)
    if not isinstance(data, dict):
        raise InvalidGroundTruth("expected an object mapping frame names to RLE masks", Location(file=relative))
    frames: list[str] = []
    counts: list[str] = []
    sizes: set[tuple[int, int]] = set()
    for frame, mask in data.items():
        if mask is None:
            continue
        size = rle.mask_size(mask.get("size")) if isinstance(mask, dict) else None
        if size is None or not isinstance(mask.get("counts"), str):
            raise InvalidGroundTruth(
                'expected an RLE {"size": [h, w], "counts": "..."}', Location(file=relative, frame=frame)
            )
        frames.append(frame)
        counts.append(mask["counts"])
        sizes.add(size)
    if len(sizes) > 1:
        raise InvalidGroundTruth(f"masks of different sizes in one annotation file: {sorted(sizes)}",
                                 Location(file=relative))
    height, width = sizes.pop() if sizes else (0, 0)
    try:
        parsed = rle.parse_counts(counts, [height * width] * len(counts))
    except rle.RLEFormatError as exc:
        where = Location(file=relative, frame=frames[exc.index])
        raise InvalidGroundTruth(f"malformed RLE: {exc.reason}", where) from None
    masks = {frame: c for frame, c, area in zip(frames, counts, parsed.areas.tolist()) if area > 0}
    return ObjectTrack(clip, obj_id, height, width, MappingProxyType(masks))
