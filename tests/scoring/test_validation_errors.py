"""Every way a submission is refused, each made from a real crafted file (zip, folder, JSON, PNG).

Each case checks the typed error from scoring.errors, that its message is a sentence a participant
can act on, and where it points (file, split, video, expression, frame), through both entry points:
`evaluate` (raises, `problems` lists every problem) and `validate_submission` (returns a report).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scoring import Limits, evaluate, load_ground_truth, validate_submission
from scoring.errors import (
    BadLayout,
    Location,
    ConflictingFormats,
    ImageBomb,
    InvalidPNG,
    InvalidSubmission,
    MalformedJSON,
    MalformedRLE,
    MaskSizeMismatch,
    NotAZip,
    UnsafeEntry,
    ZipBomb,
)

from .conftest import box, png_bytes, rle_of, write_gt, zip_dir

H, W = 8, 10
FRAMES = ["00000", "00005", "00010", "00015"]
GOOD = box(H, W, 2, 5, 3, 7)
EXPR0 = "short/v1/0/0-1.json"  # the RLE file of expression 0 (obj 1)
EXPR1 = "short/v1/1/1-2.json"  # the RLE file of expression 1 (obj 2)
PNG0 = "short/v1/0/00005.png"
WHERE0 = {"split": "short", "video": "v1", "expression": "0"}
WHERE1 = {"split": "short", "video": "v1", "expression": "1"}


# --- ground truth and raw builders ----------------------------------------------------------


@pytest.fixture(scope="module")
def gt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short video of 8x10 frames with two expressions (objects 1 and 2)."""
    return write_gt(
        tmp_path_factory.mktemp("errors") / "gt",
        {"v1": {"split": "short", "frames": FRAMES, "expressions": {"0": "1", "1": "2"}}},
        {
            ("v1", "1"): {"00005": box(H, W, 2, 5, 3, 7), "00010": box(H, W, 2, 6, 3, 8)},
            ("v1", "2"): {"00000": box(H, W, 0, 2, 0, 2)},
        },
    )


@pytest.fixture(scope="module")
def gt(gt_root: Path):
    return load_ground_truth(gt_root)


def rle_body(**frames: object) -> bytes:
    """An RLE JSON body; keyword f00005=... becomes frame "00005"; arrays are encoded."""
    body = {k.lstrip("f"): (rle_of(v) if isinstance(v, np.ndarray) else v) for k, v in frames.items()}
    return json.dumps(body).encode()


def good_rle() -> bytes:
    return rle_body(f00005=GOOD)


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names; one case wants them
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return path


def unix_entry(name: str, file_type: int) -> zipfile.ZipInfo:
    """A zip entry whose Unix mode says `file_type` (S_IFLNK, S_IFCHR, ...), as `zip --symlinks` writes."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (file_type | 0o777) << 16
    return info


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A hand-made 1-bit grayscale PNG declaring width x height, with a tiny (far too short) IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def png_two_headers(width: int, height: int) -> bytes:
    """An 8x10 PNG with a second IHDR, of width x height, before its pixel data (which fits the second)."""
    rows = b"".join(b"\x00" + bytes((width + 7) // 8) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 1, 0, 0, 0, 0))
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def image_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def noisy_png() -> bytes:
    """An 8-bit 8x10 PNG with incompressible content, so that truncating it cuts the pixel data."""
    pixels = np.random.RandomState(0).randint(0, 256, size=(H, W)).astype(np.uint8)
    return image_bytes(pixels)


def bomb_zip(path: Path) -> Path:
    """A real zip bomb: 50 MiB of zeros deflated to about 50 KiB, as one prediction file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(EXPR0, "w") as entry:
        zeros = bytes(2**20)
        for _ in range(50):
            entry.write(zeros)
    return path


def corrupted_zip(path: Path) -> Path:
    """A zip whose directory is intact but whose entry's deflated data is damaged."""
    write_zip(path, [(EXPR0, json.dumps({"00005": rle_of(GOOD), "pad": "x" * 4000}).encode())])
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode())
    for i in range(start + 2, start + 22):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def random_bytes_zip(tmp: Path) -> Path:
    path = tmp / "sub.zip"
    path.write_bytes(random.Random(1).randbytes(4096))
    return path


def truncated_zip(tmp: Path) -> Path:
    """A real zip cut short: its central directory is gone."""
    full = write_zip(tmp / "full.zip", [(EXPR0, good_rle() * 20)]).read_bytes()
    path = tmp / "sub.zip"
    path.write_bytes(full[: len(full) // 2])
    return path


def zip_with_empty_name(tmp: Path) -> Path:
    """A zip whose second entry's name is empty in the central directory (zipfile cannot make one)."""
    path = write_zip(tmp / "sub.zip", [(EXPR0, good_rle()), ("x", b"{}")])
    data = bytearray(path.read_bytes())
    entry = data.rfind(b"PK\x01\x02")  # the last central directory header: "x"
    length = struct.unpack("<H", data[entry + 28:entry + 30])[0]
    data[entry + 28:entry + 30] = struct.pack("<H", 0)
    del data[entry + 46:entry + 46 + length]
    end = data.rfind(b"PK\x05\x06")
    size = struct.unpack("<I", data[end + 12:end + 16])[0]
    data[end + 12:end + 16] = struct.pack("<I", size - length)
    path.write_bytes(bytes(data))
    return path


def zip_of_unknown_version(tmp: Path) -> Path:
    """A zip whose central directory says it needs version 9.9 to extract."""
    path = write_zip(tmp / "sub.zip", [(EXPR0, good_rle())])
    data = bytearray(path.read_bytes())
    entry = data.rfind(b"PK\x01\x02")
    data[entry + 6:entry + 8] = struct.pack("<H", 99)
    path.write_bytes(bytes(data))
    return path


def zip_with_local_name_not_utf8(tmp: Path) -> Path:
    """A zip whose local header says its name is UTF-8 (flag 0x800) but starts with the byte 0xff."""
    path = write_zip(tmp / "sub.zip", [(EXPR0, good_rle())])
    data = bytearray(path.read_bytes())
    data[6:8] = struct.pack("<H", struct.unpack("<H", data[6:8])[0] | 0x800)
    data[30] = 0xFF
    path.write_bytes(bytes(data))
    return path


def counts_of(mask: np.ndarray) -> str:
    return str(rle_of(mask)["counts"])


# --- the table of crafted submissions ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]  # tmp_path -> the submission (zip file or folder)
    error: type[InvalidSubmission]  # the exact class expected
    location: dict[str, str]  # the expected Location.as_dict()
    words: str  # a phrase the message must contain (case-insensitive)
    limits: Limits = field(default_factory=Limits)
    needs_gt: bool = False  # only detectable against the ground truth


def in_dir(files: dict[str, bytes]) -> Callable[[Path], Path]:
    return lambda tmp: write_files(tmp / "sub", files)


def in_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Callable[[Path], Path]:
    return lambda tmp: write_zip(tmp / "sub.zip", entries)


def rle_case(mask: object, words: str, frame: str = "00005") -> Case:
    """Expression 0's RLE file with one bad mask on `frame` (and a good mask before it)."""
    body = json.dumps({"00000": None, "00010": rle_of(GOOD), frame: mask}).encode()
    return Case(in_dir({EXPR0: body}), MalformedRLE, {"file": EXPR0, **WHERE0, "frame": frame}, words)


def png_case(data: bytes, error: type[InvalidSubmission], words: str, **extra: object) -> Case:
    return Case(in_dir({PNG0: data}), error, {"file": PNG0, **WHERE0, "frame": "00005"}, words, **extra)  # type: ignore[arg-type]


VALID_COUNTS = counts_of(GOOD)

# Counts strings pycocotools would trust: reading past the end of the string (ends mid-number),
# writing past the mask buffer on decode (runs adding up to more than h*w, or a huge run), or a
# negative run length.
KILLERS = {
    "ends_mid_number": "P",
    "reads_past_end": VALID_COUNTS + "n",
    "writes_past_buffer": counts_of(box(2 * H, 4 * W, 0, 16, 0, 40)),
    "huge_run": "0" + "o" * 6 + "7",
    "negative_run": "@",
}

CASES: dict[str, Case] = {
    # archive
    "random_bytes": Case(random_bytes_zip, NotAZip, {"file": "sub.zip"}, "not a zip archive"),
    "truncated_zip": Case(truncated_zip, NotAZip, {"file": "sub.zip"}, "not a zip archive"),
    "corrupted_entry_data": Case(lambda tmp: corrupted_zip(tmp / "sub.zip"), NotAZip, {"file": EXPR0}, "cannot read"),
    "absolute_path": Case(in_zip([(zipfile.ZipInfo("/" + EXPR0), good_rle())]), UnsafeEntry,
                          {"file": "/" + EXPR0}, "absolute paths"),
    "dotdot": Case(in_zip([(EXPR0, good_rle()), ("short/v1/../../../evil.json", b"{}")]), UnsafeEntry,
                   {"file": "short/v1/../../../evil.json"}, "'..'"),
    "symlink_entry": Case(in_zip([(EXPR0, good_rle()),
                                  (unix_entry("short/v1/1/1-2.json", stat.S_IFLNK), b"/etc/passwd")]),
                          UnsafeEntry, {"file": "short/v1/1/1-2.json"}, "symbolic link"),
    "char_device_entry": Case(in_zip([(unix_entry("short/v1/1/1-2.json", stat.S_IFCHR), b"")]),
                              UnsafeEntry, {"file": "short/v1/1/1-2.json"}, "device, FIFO or socket"),
    "block_device_entry": Case(in_zip([(unix_entry("short/v1/1/1-2.json", stat.S_IFBLK), b"")]),
                               UnsafeEntry, {"file": "short/v1/1/1-2.json"}, "device, FIFO or socket"),
    "fifo_entry": Case(in_zip([(unix_entry("short/v1/1/1-2.json", stat.S_IFIFO), b"")]),
                       UnsafeEntry, {"file": "short/v1/1/1-2.json"}, "device, FIFO or socket"),
    "entry_with_empty_name": Case(zip_with_empty_name, UnsafeEntry, {}, "empty name"),
    "unknown_zip_version": Case(zip_of_unknown_version, NotAZip, {"file": "sub.zip"}, "version 9.9"),
    "file_named_dot": Case(in_zip([(EXPR0, good_rle()), (".", b"x")]), UnsafeEntry, {"file": "."}, "not a file name"),
    "local_name_not_utf8": Case(zip_with_local_name_not_utf8, NotAZip, {"file": EXPR0}, "cannot read this entry"),
    "duplicate_entry": Case(in_zip([(EXPR0, good_rle()), (EXPR0, b"[]")]), UnsafeEntry, {"file": EXPR0}, "twice"),
    "too_many_entries": Case(in_zip([(EXPR0, good_rle())] + [(f"short/v1/0/junk{i}.txt", b"x") for i in range(3)]),
                             ZipBomb, {}, "entries", limits=Limits(max_entries=3)),
    "too_many_bytes": Case(in_zip([(EXPR0, good_rle() + b" " * 600), (EXPR1, b" " * 600 + b"{}")]),
                           ZipBomb, {}, "bytes once uncompressed", limits=Limits(max_total_bytes=1000)),
    "file_too_large": Case(in_zip([(EXPR0, good_rle() + b" " * 600)]), ZipBomb, {"file": EXPR0},
                           "bytes once uncompressed", limits=Limits(max_file_bytes=500)),
    "zip_bomb": Case(lambda tmp: bomb_zip(tmp / "sub.zip"), ZipBomb, {"file": EXPR0}, "compression ratio"),
    "dir_too_many_files": Case(in_dir({EXPR0: good_rle(), "short/v1/0/a.txt": b"a", "short/v1/0/b.txt": b"b"}),
                               ZipBomb, {}, "more than 2 files", limits=Limits(max_entries=2)),
    "dir_too_many_bytes": Case(in_dir({EXPR0: good_rle() + b" " * 600, EXPR1: b"{}" + b" " * 600}),
                               ZipBomb, {}, "bytes", limits=Limits(max_total_bytes=1000)),
    "no_layout": Case(in_zip([("notes/readme.txt", b"hello"), ("masks/00000.png", png_bytes(GOOD))]),
                      BadLayout, {}, "found no predictions"),
    "empty_zip": Case(in_zip([]), BadLayout, {}, "found no predictions"),
    # JSON
    "malformed_json": Case(in_dir({EXPR0: b'{"00005": {"size": [8, 10], "counts": '}), MalformedJSON,
                           {"file": EXPR0, **WHERE0}, "not valid JSON"),
    "json_not_object": Case(in_dir({EXPR0: b'[{"size": [8, 10], "counts": "abc"}]'}), MalformedJSON,
                            {"file": EXPR0, **WHERE0}, "expected an object"),
    "json_not_utf8": Case(in_dir({EXPR0: b'{"00005": "\xff\xfe"}'}), MalformedJSON, {"file": EXPR0, **WHERE0}, "UTF-8"),
    "malformed_json_in_wrapped_zip": Case(in_zip([("team/" + EXPR0, b"{oops")]), MalformedJSON,
                                          {"file": "team/" + EXPR0, **WHERE0}, "not valid JSON"),
    # RLE
    "counts_bad_char": rle_case({"size": [H, W], "counts": VALID_COUNTS[:2] + "~" + VALID_COUNTS[2:]},
                                "invalid character"),
    "counts_space": rle_case({"size": [H, W], "counts": VALID_COUNTS + " "}, "invalid character"),
    "counts_non_ascii": rle_case({"size": [H, W], "counts": "é" + VALID_COUNTS}, "non-ASCII"),
    "counts_end_mid_number": rle_case({"size": [H, W], "counts": VALID_COUNTS + "P"}, "ends in the middle of a number"),
    "counts_wrong_total": rle_case({"size": [H, W], "counts": counts_of(box(4, 5, 0, 2, 0, 2))}, "add up to 20 pixels"),
    "counts_empty_string": rle_case({"size": [H, W], "counts": ""}, "add up to 0 pixels"),
    "counts_too_large_number": rle_case({"size": [H, W], "counts": "o" * 8 + "0"}, "too large"),
    "counts_negative_run": rle_case({"size": [H, W], "counts": "@"}, "negative"),
    "counts_int": rle_case({"size": [H, W], "counts": 12345}, '"counts"'),
    "counts_null": rle_case({"size": [H, W], "counts": None}, '"counts"'),
    "counts_object": rle_case({"size": [H, W], "counts": {"0": 80}}, '"counts"'),
    "uncompressed_negative": rle_case({"size": [H, W], "counts": [-1, 81]}, "non-negative integers"),
    "uncompressed_float": rle_case({"size": [H, W], "counts": [40.0, 40]}, "non-negative integers"),
    "uncompressed_wrong_total": rle_case({"size": [H, W], "counts": [10, 10]}, "add up to 20 pixels"),
    "size_one_number": rle_case({"size": [H], "counts": VALID_COUNTS}, '"size"'),
    "size_three_numbers": rle_case({"size": [H, W, 3], "counts": VALID_COUNTS}, '"size"'),
    "size_zero": rle_case({"size": [0, W], "counts": VALID_COUNTS}, '"size"'),
    "size_negative": rle_case({"size": [-H, W], "counts": VALID_COUNTS}, '"size"'),
    "size_string": rle_case({"size": "8x10", "counts": VALID_COUNTS}, '"size"'),
    "size_floats": rle_case({"size": [8.0, 10.0], "counts": VALID_COUNTS}, '"size"'),
    "size_booleans": rle_case({"size": [True, True], "counts": "01"}, '"size"'),
    "mask_is_a_string": rle_case(VALID_COUNTS, "expected null or an RLE"),
    "mask_without_counts": rle_case({"size": [H, W]}, "expected null or an RLE"),
    # sizes
    "rle_size_differs_from_gt": Case(in_dir({EXPR0: rle_body(f00005=box(4, 5, 0, 2, 0, 2))}), MaskSizeMismatch,
                                     {"file": EXPR0, **WHERE0, "frame": "00005"}, "4x5", needs_gt=True),
    "png_size_differs_from_gt": png_case(png_bytes(box(4, 5, 0, 2, 0, 2)), MaskSizeMismatch, "4x5", needs_gt=True),
    "png_sizes_differ_within_expression": Case(
        in_dir({"short/v1/0/00000.png": png_bytes(GOOD), PNG0: png_bytes(box(4, 5, 0, 2, 0, 2))}),
        MaskSizeMismatch, {"file": PNG0, **WHERE0, "frame": "00005"}, "4x5",
    ),
    "rle_sizes_differ_within_file": Case(
        in_dir({EXPR0: rle_body(f00000=GOOD, f00005=box(4, 5, 0, 2, 0, 2))}),
        MaskSizeMismatch, {"file": EXPR0, **WHERE0, "frame": "00005"}, "4x5",
    ),
    # PNG
    "png_rgb": png_case(image_bytes(np.dstack([GOOD.astype(np.uint8) * 255] * 3)), InvalidPNG, "mode RGB"),
    "png_rgba": png_case(image_bytes(np.dstack([GOOD.astype(np.uint8) * 255] * 4)), InvalidPNG, "mode RGBA"),
    "png_la": png_case(png_bytes(GOOD, "LA"), InvalidPNG, "mode LA"),
    "jpeg_named_png": png_case(image_bytes(GOOD.astype(np.uint8) * 255, "JPEG"), InvalidPNG, "JPEG"),
    "png_truncated": png_case(noisy_png()[: len(noisy_png()) // 2], InvalidPNG, "damaged"),
    "png_garbage": png_case(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, InvalidPNG, "not a readable image"),
    "png_empty_file": png_case(b"", InvalidPNG, "not a readable image"),
    "png_bomb_huge_header": png_case(png_header_only(100_000, 100_000), ImageBomb, "too large"),
    "png_bomb_over_the_limit": png_case(png_header_only(9000, 9000), ImageBomb, "9000x9000"),
    # Pillow takes the size from the last IHDR: 12000 x 12000 would be decoded past the header check.
    "png_two_headers": png_case(png_two_headers(12000, 12000), InvalidPNG, "more than one header (IHDR)"),
    "png_two_headers_same_size": png_case(png_two_headers(W, H), InvalidPNG, "more than one header (IHDR)"),
    "png_over_a_small_limit": png_case(png_bytes(GOOD), ImageBomb, "the limit is 79 pixels",
                                       limits=Limits(max_image_pixels=79)),
    # formats
    "rle_and_png": Case(in_dir({EXPR0: good_rle(), PNG0: png_bytes(GOOD)}), ConflictingFormats, WHERE0, "both"),
    # Neither file is named after the expression's object (obj 1): which to score is not ours to guess.
    "two_rle_files": Case(in_dir({"short/v1/0/0-7.json": good_rle(), "short/v1/0/0-8.json": good_rle()}),
                          ConflictingFormats, WHERE0,
                          "2 RLE JSON files (0-7.json, 0-8.json) and none is named 0-1.json",
                          needs_gt=True),
}


def dir_with_symlink(tmp: Path) -> Path:
    root = write_files(tmp / "sub", {EXPR0: good_rle()})
    (root / "short/v1/1").mkdir(parents=True)
    os.symlink(tmp / "outside.json", root / "short/v1/1/1-2.json")
    (tmp / "outside.json").write_bytes(good_rle())
    return root


def dir_with_fifo(tmp: Path) -> Path:
    root = write_files(tmp / "sub", {EXPR0: good_rle()})
    (root / "short/v1/1").mkdir(parents=True)
    os.mkfifo(root / "short/v1/1/00000.png")
    return root


def dir_with_symlinked_folder(tmp: Path) -> Path:
    root = write_files(tmp / "sub", {EXPR0: good_rle()})
    (tmp / "elsewhere/1").mkdir(parents=True)
    (tmp / "elsewhere/1/1-2.json").write_bytes(good_rle())
    os.symlink(tmp / "elsewhere", root / "short/v2")
    return root


CASES["dir_symlink_file"] = Case(dir_with_symlink, UnsafeEntry, {"file": "short/v1/1/1-2.json"}, "symbolic links")
CASES["dir_symlink_folder"] = Case(dir_with_symlinked_folder, UnsafeEntry, {"file": "short/v2"}, "symbolic links")
CASES["dir_fifo"] = Case(dir_with_fifo, UnsafeEntry, {"file": "short/v1/1/00000.png"}, "FIFOs")

STRUCTURAL = sorted(name for name, case in CASES.items() if not case.needs_gt)
NEEDS_GT = sorted(name for name, case in CASES.items() if case.needs_gt)


def assert_helpful(error: InvalidSubmission, case: Case) -> None:
    message = error.message
    assert isinstance(message, str)
    assert case.words.lower() in message.lower(), message
    assert len(message.split()) >= 3 and message == message.strip(), message
    assert "Traceback" not in message and "object at 0x" not in message, message


def assert_is_case(error: InvalidSubmission, case: Case) -> None:
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    assert error.location.as_dict() == case.location
    assert_helpful(error, case)


# --- each crafted file, through each entry point ----------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_it_raises_the_typed_error_from_evaluate(name, tmp_path, gt):
    case = CASES[name]
    submission = case.build(tmp_path)
    with pytest.raises(InvalidSubmission) as caught:
        evaluate(gt, submission, limits=case.limits)
    assert_is_case(caught.value, case)
    assert caught.value.problems == (caught.value,)


@pytest.mark.parametrize("name", sorted(CASES))
def test_it_reports_the_same_error_from_validate_submission_with_ground_truth(name, tmp_path, gt):
    case = CASES[name]
    report = validate_submission(case.build(tmp_path), gt=gt, limits=case.limits)
    assert report.ok is False
    assert len(report.errors) == 1
    assert_is_case(report.errors[0], case)


@pytest.mark.parametrize("name", STRUCTURAL)
def test_it_reports_structural_errors_from_validate_submission_without_ground_truth(name, tmp_path):
    case = CASES[name]
    report = validate_submission(case.build(tmp_path), limits=case.limits)
    assert report.ok is False
    assert len(report.errors) == 1
    assert_is_case(report.errors[0], case)


@pytest.mark.parametrize("name", NEEDS_GT)
def test_it_accepts_other_sizes_without_ground_truth_when_they_are_consistent(name, tmp_path):
    # A mask size is only wrong relative to the ground truth; the structural check cannot know it.
    report = validate_submission(CASES[name].build(tmp_path))
    assert report.ok is True and report.errors == ()


def test_it_accepts_the_well_formed_submission_the_cases_are_made_from(tmp_path, gt):
    # The control: the same layout with good files passes both entry points.
    root = write_files(tmp_path / "sub", {EXPR0: good_rle(), "short/v1/1/00000.png": png_bytes(GOOD)})
    assert validate_submission(root).ok
    assert validate_submission(root, gt=gt).ok
    assert len(evaluate(gt, zip_dir(root, tmp_path / "sub.zip")).expressions) == 2


# --- several problems at once ---------------------------------------------------------------


def two_bad_expressions(tmp_path: Path) -> Path:
    return write_files(tmp_path / "sub", {
        EXPR0: rle_body(f00005={"size": [H, W], "counts": "~~"}),
        "short/v1/1/00000.png": image_bytes(np.zeros((H, W, 3), np.uint8)),
    })


def test_it_lists_every_problem_when_evaluate_refuses(tmp_path, gt):
    with pytest.raises(InvalidSubmission) as caught:
        evaluate(gt, two_bad_expressions(tmp_path))
    problems = caught.value.problems
    assert [type(p) for p in problems] == [MalformedRLE, InvalidPNG]
    assert problems[0] is caught.value
    assert [p.location.as_dict() for p in problems] == [
        {"file": EXPR0, **WHERE0, "frame": "00005"},
        {"file": "short/v1/1/00000.png", **WHERE1, "frame": "00000"},
    ]
    assert caught.value.summary().endswith("(and 1 more problem)")


def test_it_lists_every_problem_in_the_validation_report(tmp_path, gt):
    root = two_bad_expressions(tmp_path)
    for report in (validate_submission(root), validate_submission(root, gt=gt)):
        assert report.ok is False
        assert sorted(type(e).__name__ for e in report.errors) == ["InvalidPNG", "MalformedRLE"]


def test_it_stops_collecting_problems_at_max_errors(tmp_path, gt):
    with pytest.raises(InvalidSubmission) as caught:
        evaluate(gt, two_bad_expressions(tmp_path), limits=Limits(max_errors=1))
    assert len(caught.value.problems) == 1
    assert len(validate_submission(two_bad_expressions(tmp_path / "b"), limits=Limits(max_errors=1)).errors) == 1


def test_it_reports_an_archive_error_as_the_only_error(tmp_path, gt):
    path = tmp_path / "sub.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    for report in (validate_submission(path), validate_submission(path, gt=gt)):
        assert report.ok is False
        assert [type(e) for e in report.errors] == [NotAZip]
        assert report.n_expressions == 0


def test_it_writes_a_lone_surrogate_in_a_name_as_its_escape(tmp_path, gt):
    # JSON may name a frame "\ud800", which no UTF-8 output (a terminal, the database) can hold.
    bad = write_files(tmp_path / "bad", {EXPR0: b'{"\\ud800": {"size": [8, 10], "counts": "~"}}'})
    (error,) = validate_submission(bad, gt=gt).errors
    assert error.location.frame == "\\ud800"
    where = f"{EXPR0}, split short, video v1, expression 0, frame \\ud800: "
    assert str(error).encode("utf-8").startswith(where.encode())
    ignored = write_files(tmp_path / "ignored", {EXPR0: b'{"\\ud800": null}'})
    (warning,) = [w for w in evaluate(gt, ignored).warnings if w.code == "unknown_frames"]
    assert warning.message.endswith("were ignored: \\ud800")
    assert str(InvalidSubmission("a bad \udcff name", Location(video="\ud800"))) == "video \\ud800: a bad \\udcff name"


def test_it_gives_each_error_a_stable_code_and_a_dict(tmp_path, gt):
    report = validate_submission(two_bad_expressions(tmp_path), gt=gt)
    assert [e.as_dict() for e in report.errors] == [
        {"code": "malformed_rle", "message": report.errors[0].message,
         "location": {"file": EXPR0, **WHERE0, "frame": "00005"}},
        {"code": "invalid_png", "message": report.errors[1].message,
         "location": {"file": "short/v1/1/00000.png", **WHERE1, "frame": "00000"}},
    ]
    assert str(report.errors[0]).startswith(f"{EXPR0}, split short, video v1, expression 0, frame 00005: ")


# --- no side effects ------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Content hash, mode and mtime of every file under root (or of root itself)."""
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*"))
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir", p.stat().st_mode,
                 p.stat().st_mtime_ns)
        for p in paths
    }


def test_it_does_not_modify_the_submission_or_the_ground_truth(tmp_path, gt_root, gt):
    root = write_files(tmp_path / "sub", {EXPR0: good_rle(), "short/v1/1/00000.png": png_bytes(GOOD),
                                          "short/v9/0/0-1.json": b"{}", "README.txt": b"hi"})
    archive = zip_dir(root, tmp_path / "sub.zip", prefix="team/")
    bad = two_bad_expressions(tmp_path / "bad")
    before = [snapshot(p) for p in (root, archive, bad, gt_root)]
    masks_before = {(e.video, e.exp_id): gt.masks(e) for e in gt.expressions()}
    runs_before = gt.runs.counts.copy()
    for submission in (root, archive, bad):
        validate_submission(submission)
        validate_submission(submission, gt=gt)
        with contextlib.suppress(InvalidSubmission):
            evaluate(gt, submission)
    assert [snapshot(p) for p in (root, archive, bad, gt_root)] == before
    assert {(e.video, e.exp_id): gt.masks(e) for e in gt.expressions()} == masks_before
    assert np.array_equal(gt.runs.counts, runs_before)
    assert sorted(os.listdir(tmp_path)) == ["bad", "sub", "sub.zip"]


def test_it_never_prints_for_good_or_bad_submissions(tmp_path, gt, capfd):
    # capfd also sees what C extensions (pycocotools, zlib, libpng) would write to fds 1 and 2.
    good = write_files(tmp_path / "good", {EXPR0: good_rle(), "short/v1/1/00000.png": png_bytes(GOOD)})
    submissions = [(good, Limits()), (zip_dir(good, tmp_path / "good.zip"), Limits())]
    for i, name in enumerate(sorted(CASES)):
        (tmp_path / f"case{i}").mkdir()
        submissions.append((CASES[name].build(tmp_path / f"case{i}"), CASES[name].limits))
    for name, counts in KILLERS.items():
        killer = write_files(tmp_path / name, {EXPR0: rle_body(f00005={"size": [H, W], "counts": counts})})
        submissions.append((killer, Limits()))
    for submission, limits in submissions:
        # Whether each call raises is the other tests' business; this one is only about output.
        with contextlib.suppress(Exception):
            validate_submission(submission, limits=limits)
        with contextlib.suppress(Exception):
            validate_submission(submission, gt=gt, limits=limits)
        with contextlib.suppress(Exception):
            evaluate(gt, submission, limits=limits)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_it_lets_no_library_warning_escape_for_a_large_png_header(tmp_path, gt):
    # 10000 x 10000 is under Pillow's hard limit but over its warning threshold and over our
    # max_image_pixels: our header check refuses it, and Pillow must not also warn (a CLI or a
    # worker would print that warning on stderr).
    root = write_files(tmp_path / "sub", {PNG0: png_header_only(10_000, 10_000)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageBomb):
            evaluate(gt, root)
        assert validate_submission(root).errors[0].code == "image_bomb"
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
