"""Load the published EgoMask ground truth into plain, immutable objects.

    ROOT/annotations/<clip>/<obj_id>.json        {"<frame>": RLE, ...}, visible frames only
    ROOT/subset/<split>/meta_expressions.json    one per split (preferred), or
    ROOT/meta_expressions.json                   all splits, each video carrying "subset"

ROOT may be a folder or a zip, and may sit inside wrapping folders: the published download
(`hf download XuuuXYZ/EgoMask --repo-type dataset --local-dir dataset`) gives `dataset/egomask/`,
possibly beside the training set `dataset/egomask-train/`, which is ignored with a note.

A medium video `<clip>--<k>` is cut from the long video `<clip>` and uses its annotations; only
the frames in a video's own `frames` list count. A broken tree is refused with InvalidGroundTruth
naming the file, video and expression concerned. Every mask is parsed once, at load, into one
array of run lengths (`GroundTruth.runs`): scoring never parses the ground truth again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import msgspec
import numpy as np

from . import rle
from .archive import Limits, Source, open_source
from .errors import InvalidGroundTruth, InvalidSubmission, Location

SPLITS: tuple[str, ...] = ("short", "medium", "long")
# The ground truth is the organizers' own file, but still read through the safe archive layer.
GROUND_TRUTH_LIMITS = Limits(max_entries=5_000_000, max_total_bytes=256 * 1024**3, max_file_bytes=4 * 1024**3,
                             max_ratio=100_000)
_PARSE_BATCH_CHARS = 1 << 17  # counts characters parsed per call: fast, and small enough for the CPU cache


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
    """The ground-truth masks of one object: frame -> index of its non-empty mask in GroundTruth.runs."""

    clip: str
    obj_id: str
    height: int
    width: int
    frames: Mapping[str, int]


@dataclass(frozen=True)
class GroundTruth:
    root: str
    videos: Mapping[str, Video]
    tracks: Mapping[tuple[str, str], ObjectTrack]
    version: str  # sha256 over every file read: changes whenever the ground truth does
    runs: rle.ParsedCounts  # every non-empty mask, parsed once
    notes: tuple[str, ...] = ()  # what was found but not used (the training set)

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

    def track(self, expression: Expression) -> ObjectTrack:
        return self.tracks[(self.videos[expression.video].clip, expression.obj_id)]

    def mask_indices(self, expression: Expression) -> dict[str, int]:
        """frame -> mask index in `runs` for the expression's non-empty masks, in its video's frame order."""
        frames = self.track(expression).frames
        return {frame: frames[frame] for frame in self.videos[expression.video].frames if frame in frames}

    def masks(self, expression: Expression) -> dict[str, str]:
        """Ground-truth masks of an expression as compressed counts, restricted to its video's frames."""
        video = self.videos[expression.video]
        return {frame: rle.compress(self.runs.runs(i), video.height, video.width)
                for frame, i in self.mask_indices(expression).items()}


def load_ground_truth(path: str | os.PathLike[str] | Source, *,
                      cache: str | os.PathLike[str] | None = None) -> GroundTruth:
    """Read and check a ground-truth tree (folder or zip). Raises InvalidGroundTruth with a precise message.

    With `cache` (a folder), the parsed masks are kept there in a compact form, named by the
    ground truth's version: a later load still reads and hashes every file, so a changed file
    is never missed, but does not decode or parse the masks again.
    """
    if isinstance(path, Source):
        return _load(path, str(getattr(path, "label", "")), cache)
    location = Path(path)
    if not location.exists():
        raise InvalidGroundTruth(f"ground truth {location} does not exist")
    try:
        source = open_source(location, GROUND_TRUTH_LIMITS)
    except InvalidSubmission as exc:
        raise InvalidGroundTruth(f"cannot read the ground truth: {exc}") from None
    with source:
        return _load(source, str(location), cache)


class _Reader:
    """Reads the files of the benchmark below `base` in a source, hashing every one."""

    def __init__(self, source: Source, base: str) -> None:
        self.source, self.base = source, base
        self.digest = hashlib.sha256()

    def exists(self, relative: str) -> bool:
        return self.base + relative in self.source.files

    def read(self, relative: str) -> bytes:
        try:
            data = self.source.read(self.base + relative)
        except (OSError, InvalidSubmission) as exc:
            raise InvalidGroundTruth(f"cannot read: {exc}", Location(file=relative)) from None
        self.digest.update(relative.encode() + b"\0" + data + b"\0")
        return data

    def json(self, relative: str) -> object:
        try:
            return json.loads(self.read(relative))
        except (ValueError, RecursionError) as exc:
            raise InvalidGroundTruth(f"not valid JSON ({exc})", Location(file=relative)) from None


def _meta_base(name: str) -> str | None:
    """The benchmark folder a meta_expressions.json belongs to ("" for the top), or None."""
    for split in SPLITS:
        if name == f"subset/{split}/meta_expressions.json" or name.endswith(f"/subset/{split}/meta_expressions.json"):
            return name[: -len(f"subset/{split}/meta_expressions.json")]
    if name == "meta_expressions.json" or name.endswith("/meta_expressions.json"):
        return name[: -len("meta_expressions.json")]
    return None


def _find_root(source: Source, label: str) -> tuple[str, tuple[str, ...]]:
    """The benchmark's folder inside the source ("" or e.g. "egomask/"), and notes on what else is there."""
    bases = {base for name in source.files if (base := _meta_base(name)) is not None}
    annotated = {name[: name.index("annotations/")] for name in source.files if "annotations/" in name
                 and (name.startswith("annotations/") or "/annotations/" in name)}
    roots = sorted(bases & annotated)
    what = label or "the ground truth"
    if not roots:
        raise InvalidGroundTruth(
            f"no EgoMask ground truth in {what}: expected annotations/<clip>/<obj_id>.json and "
            "subset/<split>/meta_expressions.json (or meta_expressions.json), as `hf download XuuuXYZ/EgoMask "
            "--repo-type dataset` gives in egomask/")
    if len(roots) > 1:
        shown = ", ".join(r or "the top level" for r in roots)
        raise InvalidGroundTruth(f"{what} holds more than one benchmark ({shown}); give the folder of one of them")
    root = roots[0]
    trains = sorted({name[: name.index("egomask-train/") + len("egomask-train/")] for name in source.files
                     if "egomask-train/" in name and not name.startswith(root + "annotations/")})
    notes = tuple(f"ignored {train}: the training set (EgoMask-Train) is not scored" for train in trains)
    return root, notes


def _load(source: Source, label: str, cache: str | os.PathLike[str] | None) -> GroundTruth:
    base, notes = _find_root(source, label)
    reader = _Reader(source, base)
    meta = _read_meta(reader)
    clips = {name[len(base) + len("annotations/"):].split("/", 1)[0] for name in source.files
             if name.startswith(base + "annotations/")}
    files: dict[tuple[str, str], bytes] = {}  # every annotation file the expressions use, read (and hashed) once
    videos: list[tuple[str, str, str, tuple[str, ...], list[Expression]]] = []
    for name, split, frames, raw_expressions, meta_file in meta:
        clip = _clip_of(clips, name, meta_file)
        expressions = []
        for exp_id, obj_id, text in raw_expressions:
            if (clip, obj_id) not in files:
                relative = f"annotations/{clip}/{obj_id}.json"
                if not reader.exists(relative):
                    raise InvalidGroundTruth(f"missing annotation file {relative}",
                                             Location(file=meta_file, split=split, video=name, expression=exp_id))
                files[(clip, obj_id)] = reader.read(relative)
            expressions.append(Expression(split=split, video=name, exp_id=exp_id, text=text, obj_id=obj_id))
        videos.append((name, split, clip, frames, expressions))
    version = reader.digest.hexdigest()
    cached = _cache_path(cache, version) if cache is not None else None
    loaded = _read_cache(cached) if cached is not None and cached.exists() else None
    keys = list(files)
    if loaded is None:
        tracks = {key: _decode_track(files.pop(key), *key) for key in keys}  # each file's bytes freed once decoded
        runs, indices = _parse_tracks(tracks)
        shapes = {key: (t.height, t.width) for key, t in tracks.items()}
        del tracks
        if cached is not None:
            _write_cache(cached, runs, shapes, indices)
    else:
        runs, shapes, indices = loaded
    del files
    out_tracks = {key: ObjectTrack(key[0], key[1], *shapes[key], MappingProxyType(indices[key])) for key in keys}
    out_videos: dict[str, Video] = {}
    for name, split, clip, frames, expressions in videos:
        frame_set = set(frames)
        for expression in expressions:
            if not frame_set.intersection(out_tracks[(clip, expression.obj_id)].frames):
                raise InvalidGroundTruth(
                    f"the object (obj_id {expression.obj_id}) is not visible in any of the video's frames",
                    Location(file=f"annotations/{clip}/{expression.obj_id}.json", split=split, video=name,
                             expression=expression.exp_id),
                )
        sizes = {shapes[(clip, e.obj_id)] for e in expressions}
        if len(sizes) > 1:
            raise InvalidGroundTruth(f"masks of different sizes in one video: {sorted(sizes)}",
                                     Location(split=split, video=name))
        height, width = sizes.pop() if sizes else (0, 0)
        out_videos[name] = Video(name, split, clip, frames, height, width, tuple(expressions))
    return GroundTruth(root=label + ("/" + base.rstrip("/") if base else ""), videos=MappingProxyType(out_videos),
                       tracks=MappingProxyType(out_tracks), version=version, runs=runs, notes=notes)


# --- the compact cache: parsed masks of one ground-truth version ----------------------------------

_CACHE_FORMAT = 1  # bump when what is stored changes


def _cache_path(folder: str | os.PathLike[str], version: str) -> Path:
    return Path(folder) / f"egomask-gt-{_CACHE_FORMAT}-{version}.npz"


_Cached = tuple[rle.ParsedCounts, dict[tuple[str, str], tuple[int, int]], dict[tuple[str, str], dict[str, int]]]


def _read_cache(path: Path) -> _Cached | None:
    """What a previous load stored, or None if the file is unreadable (it is then simply rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            runs = rle.ParsedCounts(counts=stored["counts"], offsets=stored["offsets"], areas=stored["areas"],
                                    pixels=stored["pixels"])
            tracks = json.loads(stored["tracks"].tobytes())
    except (OSError, ValueError, KeyError):
        return None
    shapes, indices = {}, {}
    for clip, obj_id, height, width, first, frames in tracks:
        shapes[(clip, obj_id)] = (height, width)
        indices[(clip, obj_id)] = {frame: first + i for i, frame in enumerate(frames)}
    return runs, shapes, indices


def _write_cache(path: Path, runs: rle.ParsedCounts, shapes: Mapping[tuple[str, str], tuple[int, int]],
                 indices: Mapping[tuple[str, str], Mapping[str, int]]) -> None:
    """Store the parsed masks atomically; a cache that cannot be written only costs speed."""
    tracks = [[clip, obj_id, *shapes[(clip, obj_id)], min(frames.values(), default=0), list(frames)]
              for (clip, obj_id), frames in indices.items()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            np.savez(handle, counts=runs.counts, offsets=runs.offsets, areas=runs.areas, pixels=runs.pixels,
                     tracks=np.frombuffer(json.dumps(tracks).encode(), dtype=np.uint8))
        os.replace(partial, path)
    except OSError:
        pass


_Meta = list[tuple[str, str, tuple[str, ...], list[tuple[str, str, str]], str]]


def _read_meta(reader: _Reader) -> _Meta:
    """(video, split, frames, [(exp_id, obj_id, text)], meta file) for every video."""
    sources: list[tuple[str, str | None]] = [(f"subset/{split}/meta_expressions.json", split) for split in SPLITS
                                             if reader.exists(f"subset/{split}/meta_expressions.json")]
    if not sources:
        sources = [("meta_expressions.json", None)]
    out: _Meta = []
    seen: dict[str, str] = {}
    for relative, split in sources:
        data = reader.json(relative)
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


def _clip_of(clips: set[str], video: str, meta_file: str) -> str:
    if video in clips:
        return video
    if "--" in video and (clip := video.split("--")[0]) in clips:  # as evaluation/eval_egomask.py does
        return clip
    raise InvalidGroundTruth(
        f"no annotations folder for this video (annotations/{video}/)", Location(file=meta_file, video=video)
    )


@dataclass
class _Track:
    clip: str
    obj_id: str
    height: int
    width: int
    frames: list[str]
    counts: list[str]


class _Annotation(msgspec.Struct):
    size: tuple[int, int]
    counts: str


_decode_annotation = msgspec.json.Decoder(dict[str, _Annotation | None]).decode


def _decode_track(data: bytes, clip: str, obj_id: str) -> _Track:
    relative = f"annotations/{clip}/{obj_id}.json"
    try:
        body = _decode_annotation(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InvalidGroundTruth(f"not valid JSON ({exc})", Location(file=relative)) from None
        raise _annotation_error(parsed, relative) from None
    frames = [frame for frame, mask in body.items() if mask is not None]
    sizes = {body[frame].size for frame in frames}  # type: ignore[union-attr]
    for frame in frames:
        if rle.mask_size(body[frame].size) is None:  # type: ignore[union-attr]
            raise InvalidGroundTruth(rle.SIZE_RULE, Location(file=relative, frame=frame))
    if len(sizes) > 1:
        raise InvalidGroundTruth(f"masks of different sizes in one annotation file: {sorted(sizes)}",
                                 Location(file=relative))
    height, width = sizes.pop() if sizes else (0, 0)
    return _Track(clip, obj_id, height, width, frames, [body[f].counts for f in frames])  # type: ignore[union-attr]


def _annotation_error(data: object, relative: str) -> InvalidGroundTruth:
    if not isinstance(data, dict):
        return InvalidGroundTruth("expected an object mapping frame names to RLE masks", Location(file=relative))
    for frame, mask in data.items():
        if mask is not None and not (isinstance(mask, dict) and rle.mask_size(mask.get("size"))
                                     and isinstance(mask.get("counts"), str)):
            return InvalidGroundTruth('expected an RLE {"size": [h, w], "counts": "..."}',
                                      Location(file=relative, frame=frame))
    return InvalidGroundTruth("expected an object mapping frame names to RLE masks", Location(file=relative))


def _parse_tracks(tracks: Mapping[tuple[str, str], _Track]
                  ) -> tuple[rle.ParsedCounts, dict[tuple[str, str], dict[str, int]]]:
    """Parse every track's masks in batches into one ParsedCounts; frame -> index of non-empty masks per track."""
    counts: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    areas: list[np.ndarray] = []
    totals: list[np.ndarray] = []
    indices: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    total_runs = total_masks = 0

    def flush(batch: list[tuple[tuple[str, str], str, str, int]]) -> None:
        nonlocal total_runs, total_masks
        if not batch:
            return
        try:
            parsed = rle.parse_counts([c for _, _, c, _ in batch], [p for _, _, _, p in batch])
        except rle.RLEFormatError as exc:
            (clip, obj_id), frame, _, _ = batch[exc.index]
            raise InvalidGroundTruth(f"malformed RLE: {exc.reason}",
                                     Location(file=f"annotations/{clip}/{obj_id}.json", frame=frame)) from None
        keep = np.flatnonzero(parsed.areas > 0)
        # Only non-empty masks are kept: copy their runs out of the batch.
        starts, stops = parsed.offsets[keep], parsed.offsets[keep + 1]
        lengths = stops - starts
        if keep.size:
            before = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            take = np.repeat(starts - before, lengths) + np.arange(lengths.sum())
            counts.append(parsed.counts[take])
            offsets.append(total_runs + np.cumsum(lengths))
            areas.append(parsed.areas[keep])
            totals.append(parsed.pixels[keep])
        for position, i in enumerate(keep.tolist()):
            key, frame, _, _ = batch[i]
            indices[key][frame] = total_masks + position
        total_runs += int(lengths.sum())
        total_masks += keep.size
        batch.clear()

    batch: list[tuple[tuple[str, str], str, str, int]] = []
    chars = 0
    for key, track in tracks.items():
        pixels = track.height * track.width
        for frame, value in zip(track.frames, track.counts):
            batch.append((key, frame, value, pixels))
            chars += len(value)
            if chars >= _PARSE_BATCH_CHARS:
                flush(batch)
                chars = 0
    flush(batch)
    runs = rle.ParsedCounts(
        counts=np.concatenate(counts) if counts else np.zeros(0, np.int32),
        offsets=np.concatenate([np.zeros(1, np.int64), *offsets]),
        areas=np.concatenate(areas) if areas else np.zeros(0, np.int64),
        pixels=np.concatenate(totals) if totals else np.zeros(0, np.int64),
    )
    return runs, {key: indices.get(key, {}) for key in tracks}
