"""Find and read the predicted masks of a submission.

    <split>/<video>/<exp_id>/<exp_id>-<obj_id>.json    {"<frame>": RLE | null, ...}
    <split>/<video>/<exp_id>/<frame>.png                any non-zero pixel is foreground

optionally all under one wrapping folder. An expression uses one format, never both. Masks come
out as compressed counts of non-empty masks only: an explicit empty mask or null is the same as
no mask for that frame.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import rle
from .archive import Limits, Source
from .errors import (
    BadLayout,
    ConflictingFormats,
    ImageBomb,
    InvalidPNG,
    Location,
    MalformedJSON,
    MalformedRLE,
    MaskSizeMismatch,
    ScoringWarning,
)
from .groundtruth import SPLITS

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_OTHER_FORMATS = ((b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
                  (b"MM\x00*", "TIFF"), (b"RIFF", "WebP"))
_SINGLE_CHANNEL_MODES = {"1", "L", "P", "I;16", "I;16B", "I;16L", "I"}
_EXAMPLES = 5


def sample(names: Iterable[str]) -> str:
    """A short, readable list of names: the first few and how many more."""
    names = sorted(names)
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else "")


@dataclass(frozen=True)
class ExpressionFiles:
    split: str
    video: str
    exp_id: str
    json_files: tuple[str, ...] = ()
    png_files: Mapping[str, str] = field(default_factory=dict)  # frame -> path

    @property
    def location(self) -> Location:
        return Location(split=self.split, video=self.video, expression=self.exp_id)


@dataclass(frozen=True)
class Layout:
    expressions: Mapping[tuple[str, str, str], ExpressionFiles]
    warnings: tuple[ScoringWarning, ...]


def index_layout(paths: Iterable[str]) -> Layout:
    """Group file paths by (split, video, exp_id). Raises BadLayout if nothing is recognisable."""
    parts = [PurePosixPath(p).parts for p in paths]
    tops = {p[0] for p in parts}
    prefix = ""
    if len(tops) == 1 and not tops & set(SPLITS) and all(len(p) > 1 for p in parts):
        prefix = next(iter(tops)) + "/"
        parts = [p[1:] for p in parts]

    json_files: dict[tuple[str, str, str], list[str]] = {}
    png_files: dict[tuple[str, str, str], dict[str, str]] = {}
    ignored: list[str] = []
    for p in parts:
        path = prefix + "/".join(p)
        if len(p) != 4 or p[0] not in SPLITS:
            ignored.append(path)
            continue
        key = (p[0], p[1], p[2])
        name = PurePosixPath(p[3])
        suffix = name.suffix.lower()
        if suffix == ".json":
            json_files.setdefault(key, []).append(path)
        elif suffix == ".png":
            png_files.setdefault(key, {})[name.stem] = path
        else:
            ignored.append(path)

    keys = sorted(set(json_files) | set(png_files))
    if not keys:
        seen = sample({p[0] for p in parts if p}) or "nothing"
        raise BadLayout(
            "found no predictions: expected <split>/<video>/<exp_id>/<exp_id>-<obj_id>.json or "
            f"<split>/<video>/<exp_id>/<frame>.png with <split> one of {', '.join(SPLITS)} "
            f"(top-level folders found: {seen})"
        )
    warnings = []
    if ignored:
        warnings.append(
            ScoringWarning("ignored_files", f"{len(ignored)} file(s) outside the prediction layout were ignored: "
                           f"{sample(ignored)}")
        )
    expressions = {
        key: ExpressionFiles(
            *key,
            json_files=tuple(sorted(json_files.get(key, ()))),
            png_files=MappingProxyType(png_files.get(key, {})),
        )
        for key in keys
    }
    return Layout(MappingProxyType(expressions), tuple(warnings))


@dataclass(frozen=True)
class PredictedMasks:
    """The non-empty predicted masks of one expression, and every frame the files named."""

    masks: Mapping[str, str]  # frame -> compressed counts
    frames: frozenset[str]
    size: tuple[int, int] | None  # (height, width) of the masks, None when no mask has a size
    obj_id: str | None  # from the RLE file name <exp_id>-<obj_id>.json


def read_expression(
    source: Source,
    files: ExpressionFiles,
    *,
    size: tuple[int, int] | None,
    limits: Limits,
) -> PredictedMasks:
    """Read one expression's masks, checking them; `size` is the expected (height, width) if known."""
    if files.json_files and files.png_files:
        raise ConflictingFormats(
            "this expression has both an RLE JSON file and PNG masks; keep one format", files.location
        )
    if len(files.json_files) > 1:
        raise ConflictingFormats(
            f"this expression has {len(files.json_files)} RLE JSON files ({sample(files.json_files)}); keep one",
            files.location,
        )
    if files.json_files:
        return _read_rle_json(source, files, size)
    return _read_pngs(source, files, size, limits)


def _obj_id_from_name(path: str, exp_id: str) -> str | None:
    stem = PurePosixPath(path).stem
    return stem[len(exp_id) + 1 :] if stem.startswith(exp_id + "-") else None


def _read_rle_json(source: Source, files: ExpressionFiles, size: tuple[int, int] | None) -> PredictedMasks:
    path = files.json_files[0]
    where = Location(file=path, split=files.split, video=files.video, expression=files.exp_id)
    try:
        data = json.loads(source.read(path))
    except UnicodeDecodeError:
        raise MalformedJSON("the file is not UTF-8 text", where) from None
    except ValueError as exc:
        raise MalformedJSON(f"not valid JSON ({exc})", where) from None
    if not isinstance(data, dict):
        raise MalformedJSON('expected an object mapping frame names to RLE masks: {"00000": {"size": [h, w], '
                            '"counts": "..."}, ...}', where)

    frames: list[str] = []
    counts: list[str] = []
    seen_size = size
    for frame, mask in data.items():
        if mask is None:
            continue
        at = Location(file=path, split=files.split, video=files.video, expression=files.exp_id, frame=frame)
        if not isinstance(mask, dict) or "size" not in mask or "counts" not in mask:
            raise MalformedRLE('expected null or an RLE {"size": [height, width], "counts": "..."}', at)
        mask_size = rle.mask_size(mask["size"])
        if mask_size is None:
            raise MalformedRLE('"size" must be [height, width], two positive integers', at)
        height, width = mask_size
        if seen_size is not None and (height, width) != seen_size:
            expected = "the ground truth's" if size is not None else "this video's other masks'"
            raise MaskSizeMismatch(
                f"mask size is {height}x{width} (height x width) but {expected} is {seen_size[0]}x{seen_size[1]}", at
            )
        seen_size = (height, width)
        value = mask["counts"]
        if isinstance(value, list):
            try:
                runs, _ = rle.check_uncompressed(value, height * width)
            except rle.RLEFormatError as exc:
                raise MalformedRLE(exc.reason, at) from None
            value = rle.compress(runs, height, width)
        elif not isinstance(value, str):
            raise MalformedRLE('"counts" must be a compressed RLE string (as pycocotools.mask.encode writes it)', at)
        frames.append(frame)
        counts.append(value)

    pixels = [seen_size[0] * seen_size[1]] * len(counts) if seen_size else []
    try:
        parsed = rle.parse_counts(counts, pixels)
    except rle.RLEFormatError as exc:
        raise MalformedRLE(
            f"malformed RLE: {exc.reason}",
            Location(file=path, split=files.split, video=files.video, expression=files.exp_id,
                     frame=frames[exc.index]),
        ) from None
    masks = {frame: c for frame, c, area in zip(frames, counts, parsed.areas.tolist()) if area > 0}
    return PredictedMasks(
        masks=MappingProxyType(masks),
        frames=frozenset(data),
        size=seen_size,
        obj_id=_obj_id_from_name(path, files.exp_id),
    )


def _read_pngs(source: Source, files: ExpressionFiles, size: tuple[int, int] | None, limits: Limits) -> PredictedMasks:
    masks: dict[str, str] = {}
    seen_size = size
    for frame, path in sorted(files.png_files.items()):
        at = Location(file=path, split=files.split, video=files.video, expression=files.exp_id, frame=frame)
        mask = _read_png(source.read(path), at, seen_size, size is not None, limits)
        seen_size = mask.shape
        if mask.any():
            masks[frame] = rle.encode(mask)["counts"]  # type: ignore[assignment]
    return PredictedMasks(
        masks=MappingProxyType(masks),
        frames=frozenset(files.png_files),
        size=seen_size,
        obj_id=None,
    )


def _read_png(
    data: bytes, at: Location, size: tuple[int, int] | None, size_from_gt: bool, limits: Limits
) -> np.ndarray:
    """A boolean mask from PNG bytes; the header is checked before any pixel is decoded."""
    # Read the size from the IHDR chunk ourselves: Pillow would warn (on stderr) about a huge
    # image before our own limit could refuse it.
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        kind = next((name for magic, name in _OTHER_FORMATS if data.startswith(magic)), None)
        if kind:
            raise InvalidPNG(f"this is a {kind} file, not a PNG; masks must be lossless PNG images", at)
        raise InvalidPNG("not a readable image: the PNG header is missing or damaged", at)
    width, height = struct.unpack(">II", data[16:24])
    if width * height > limits.max_image_pixels:
        raise ImageBomb(f"the image is too large to decode safely: {width}x{height} pixels, the limit is "
                        f"{limits.max_image_pixels} pixels", at)
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except Image.DecompressionBombError as exc:
        raise ImageBomb(f"the image is too large to decode safely ({exc})", at) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidPNG("not a readable image", at) from None
    with image:
        if size is not None and (height, width) != size:
            expected = "the ground truth's" if size_from_gt else "this expression's other masks'"
            raise MaskSizeMismatch(
                f"mask size is {height}x{width} (height x width) but {expected} is {size[0]}x{size[1]}", at
            )
        if image.mode not in _SINGLE_CHANNEL_MODES:
            raise InvalidPNG(
                f"the PNG has mode {image.mode} ({len(image.getbands())} channels); a mask must be a "
                "single-channel or bi-level image (mode L or 1)",
                at,
            )
        try:
            image.load()
            return np.asarray(image) != 0
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidPNG(f"the PNG is damaged ({exc})", at) from None
