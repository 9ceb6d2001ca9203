"""Read the predicted masks of one expression, checking them.

    <exp_id>-<obj_id>.json    {"<frame>": RLE | null, ...}   (the official runners' format)
    <frame>.png               any non-zero pixel is foreground

An expression uses one format, never both. Its RLE file is chosen by name: the file named after
the expression's object (`<exp_id>-<obj_id>.json` with the ground truth's obj_id) wins over any
other JSON file in the folder; a single JSON file is used whatever its name. The masks come out
as compressed counts strings, not yet parsed: the caller parses many expressions' strings in one
batch (rle.parse_counts). An explicit empty mask or null is the same as no mask for that frame.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from pathlib import PurePosixPath

import msgspec
import numpy as np

from . import rle
from .archive import Limits, Source
from .errors import (
    ConflictingFormats,
    ImageBomb,
    InvalidPNG,
    Location,
    MalformedJSON,
    MalformedRLE,
    MaskSizeMismatch,
    ScoringWarning,
)
from .layout import ExpressionFiles, sample

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_OTHER_FORMATS = ((b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
                  (b"MM\x00*", "TIFF"), (b"RIFF", "WebP"))
_SINGLE_CHANNEL_MODES = {"1", "L", "P", "I;16", "I;16B", "I;16L", "I"}
_OBJECT_HINT = 'expected an object mapping frame names to RLE masks: {"00000": {"size": [h, w], "counts": "..."}, ...}'


class _Mask(msgspec.Struct):
    size: tuple[int, int]
    counts: str | list[int]


# Decoding into typed structs checks the common, well-formed file at C speed; any file it
# refuses goes through the plain JSON path below, which says exactly what is wrong.
_decode_masks = msgspec.json.Decoder(dict[str, _Mask | None]).decode


@dataclass(frozen=True)
class RawMasks:
    """One expression's masks before their counts are parsed."""

    frames: tuple[str, ...]  # frames that have a mask (not null), in file order
    counts: tuple[str, ...]  # their compressed counts strings
    named: frozenset[str]  # every frame the files name
    size: tuple[int, int] | None  # (height, width), None when no mask has a size
    obj_id: str | None  # from the RLE file name <exp_id>-<obj_id>.json
    path: str | None  # the RLE JSON file read; None for PNG masks or no file
    warnings: tuple[ScoringWarning, ...] = ()

    def location(self, files: ExpressionFiles, frame: str | None = None) -> Location:
        return Location(file=self.path if frame is None or self.path else files.png_files.get(frame),
                        split=files.split, video=files.video, expression=files.exp_id, frame=frame)


def _obj_id_from_name(path: str, exp_id: str) -> str | None:
    stem = PurePosixPath(path).stem
    return stem[len(exp_id) + 1 :] if stem.startswith(exp_id + "-") else None


def mask_files(files: ExpressionFiles, obj_id: str | None) -> tuple[tuple[str, ...], tuple[ScoringWarning, ...]]:
    """The RLE JSON file(s) to read for an expression, chosen by name, and what was left out.

    With the expression's `obj_id` (from the ground truth) one file is chosen, or ConflictingFormats
    names the candidates. Without it (structural checks) every candidate is returned to be checked.
    """
    candidates = files.json_files
    if candidates and files.png_files:
        raise ConflictingFormats("this expression has both an RLE JSON file and PNG masks; keep one format",
                                 files.location)
    if len(candidates) <= 1:
        return candidates, ()
    named = f"{files.folder}/{files.exp_id}-{obj_id}.json"
    if named in candidates:
        others = [c for c in candidates if c != named]
        return (named,), (ScoringWarning(
            "extra_mask_files", f"used {PurePosixPath(named).name}, named after the expression's object; ignored "
            f"{sample(PurePosixPath(o).name for o in others)}", files.location),)
    names = sample(PurePosixPath(c).name for c in candidates)
    if obj_id is not None:
        raise ConflictingFormats(
            f"this expression has {len(candidates)} RLE JSON files ({names}) and none is named "
            f"{files.exp_id}-{obj_id}.json after the expression's object; keep one", files.location)
    return candidates, (ScoringWarning(
        "several_mask_files", f"{len(candidates)} RLE JSON files ({names}): the scorer uses the one named "
        f"{files.exp_id}-<obj_id>.json after the expression's object", files.location),)


def read_expression(source: Source, files: ExpressionFiles, *, size: tuple[int, int] | None,
                    obj_id: str | None = None, limits: Limits) -> list[RawMasks]:
    """Read one expression's masks (one RawMasks per file read: one, except in structural checks
    of a folder with several candidates). `size` is the expected (height, width) if known."""
    paths, warnings = mask_files(files, obj_id)
    if paths:
        return [_read_rle_json(source, files, path, size, warnings) for path in paths]
    if files.png_files:
        return [_read_pngs(source, files, size, limits)]
    return [RawMasks((), (), frozenset(), size, None, None)]


def _read_rle_json(source: Source, files: ExpressionFiles, path: str, size: tuple[int, int] | None,
                   warnings: tuple[ScoringWarning, ...]) -> RawMasks:
    data = source.read(path)
    obj_id = _obj_id_from_name(path, files.exp_id)
    try:
        masks = _decode_masks(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        frames, counts, named, seen = _checked_slowly(data, files, path, size)
    else:
        frames = tuple(frame for frame, mask in masks.items() if mask is not None)
        sizes = {masks[frame].size for frame in frames}  # type: ignore[union-attr]
        if any(not isinstance(masks[f].counts, str) for f in frames) or len(sizes) > 1 or (  # type: ignore[union-attr]
                sizes and (rle.mask_size(next(iter(sizes))) is None or size not in (None, *sizes))):
            frames, counts, named, seen = _checked_slowly(data, files, path, size)
        else:
            counts = tuple(masks[frame].counts for frame in frames)  # type: ignore[union-attr,misc]
            named = frozenset(masks)
            seen = next(iter(sizes)) if sizes else size
    return RawMasks(frames, counts, named, seen, obj_id, path, warnings)  # type: ignore[arg-type]


def _checked_slowly(data: bytes, files: ExpressionFiles, path: str, size: tuple[int, int] | None
                    ) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str], tuple[int, int] | None]:
    """Check a mask file entry by entry: (frames, counts, named frames, size), or the exact problem."""
    where = Location(file=path, split=files.split, video=files.video, expression=files.exp_id)
    try:
        body = json.loads(data)
    except UnicodeDecodeError:
        raise MalformedJSON("the file is not UTF-8 text", where) from None
    except RecursionError:
        raise MalformedJSON("not valid JSON: it is nested too deeply", where) from None
    except ValueError as exc:
        raise MalformedJSON(f"not valid JSON ({exc})", where) from None
    if not isinstance(body, dict):
        raise MalformedJSON(_OBJECT_HINT, where)
    frames: list[str] = []
    counts: list[str] = []
    seen = size
    for frame, mask in body.items():
        if mask is None:
            continue
        at = Location(file=path, split=files.split, video=files.video, expression=files.exp_id, frame=frame)
        if not isinstance(mask, dict) or "size" not in mask or "counts" not in mask:
            raise MalformedRLE('expected null or an RLE {"size": [height, width], "counts": "..."}', at)
        mask_size = rle.mask_size(mask["size"])
        if mask_size is None:
            raise MalformedRLE(rle.SIZE_RULE, at)
        if seen is not None and mask_size != seen:
            expected = "the ground truth's" if size is not None else "this video's other masks'"
            raise MaskSizeMismatch(f"mask size is {mask_size[0]}x{mask_size[1]} (height x width) but {expected} is "
                                   f"{seen[0]}x{seen[1]}", at)
        seen = mask_size
        value = mask["counts"]
        if isinstance(value, list):
            try:
                value = rle.compress(rle.check_uncompressed(value, mask_size[0] * mask_size[1]), *mask_size)
            except rle.RLEFormatError as exc:
                raise MalformedRLE(exc.reason, at) from None
        elif not isinstance(value, str):
            raise MalformedRLE('"counts" must be a compressed RLE string (as pycocotools.mask.encode writes it)', at)
        frames.append(frame)
        counts.append(value)
    return tuple(frames), tuple(counts), frozenset(body), seen


def _read_pngs(source: Source, files: ExpressionFiles, size: tuple[int, int] | None, limits: Limits) -> RawMasks:
    frames: list[str] = []
    counts: list[str] = []
    seen = size
    for frame, path in sorted(files.png_files.items()):
        at = Location(file=path, split=files.split, video=files.video, expression=files.exp_id, frame=frame)
        mask = _read_png(source.read(path), at, seen, size is not None, limits)
        seen = mask.shape
        if mask.any():
            frames.append(frame)
            counts.append(rle.encode(mask)["counts"])  # type: ignore[arg-type]
    return RawMasks(tuple(frames), tuple(counts), frozenset(files.png_files), seen, None, None)


def _header_chunks(data: bytes) -> int:
    """How many IHDR chunks come before the pixel data (the first IDAT chunk)."""
    count, at = 0, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            break
        count += kind == b"IHDR"
        at += 12 + length
    return count


def _read_png(data: bytes, at: Location, size: tuple[int, int] | None, size_from_gt: bool,
              limits: Limits) -> np.ndarray:
    """A boolean mask from PNG bytes; the header is checked before any pixel is decoded."""
    # Read the size from the IHDR chunk ourselves: Pillow would warn (on stderr) about a huge
    # image before our own limit could refuse it.
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        kind = next((name for magic, name in _OTHER_FORMATS if data.startswith(magic)), None)
        if kind:
            raise InvalidPNG(f"this is a {kind} file, not a PNG; masks must be lossless PNG images", at)
        raise InvalidPNG("not a readable image: the PNG header is missing or damaged", at)
    from PIL import Image, UnidentifiedImageError  # PNG masks only: most submissions are RLE JSON

    width, height = struct.unpack(">II", data[16:24])
    if _header_chunks(data) > 1:  # Pillow would take the size from the last one, past the check below
        raise InvalidPNG("not a readable image: the PNG has more than one header (IHDR) chunk", at)
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
