"""Reading submissions safely, beyond the crafted-case table of test_validation_errors.py: entries under their
normalised names, bzip2 and lzma entries inflated no further than they declare, too many entries refused from
the end record before zipfile reads the directory, a missing path, an image bomb refused by its header
(several of these found by the fuzzer, tests/scoring/fuzzkit/), and counts that would crash pycocotools."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from scoring import Limits, evaluate, validate_submission
from scoring.archive import open_source
from scoring.errors import ImageBomb, InvalidPNG, MalformedRLE, NotAZip, ZipBomb

from .conftest import box
from . import test_validation_errors as crafted
from .test_validation_errors import (EXPR0, EXPR1, KILLERS, PNG0, H, W, good_rle, png_header_only, rle_body,
                                     write_files, write_zip)

# The crafted-case table's ground truth (8 x 10 frames), the same module-scoped fixtures.
gt_root = crafted.gt_root
gt = crafted.gt

def test_it_reads_entries_under_their_normalised_names(tmp_path, gt):
    # "./a" and "a//b" are what some zip tools write for "a" and "a/b": the same files, scored the same.
    plain = evaluate(gt, write_zip(tmp_path / "plain.zip", [(EXPR0, good_rle()), (EXPR1, good_rle())]))
    spelled = write_zip(tmp_path / "spelled.zip", [("./" + EXPR0, good_rle()), (EXPR1.replace("/", "//"), good_rle())])
    assert evaluate(gt, spelled).expressions == plain.expressions
    assert validate_submission(spelled).ok


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_it_scores_bzip2_and_lzma_entries_as_deflated_ones(tmp_path, gt, method):
    # A file of several MiB, so that reading it takes several chunks, and an empty one.
    big = rle_body(f00000=box(H, W, 0, 2, 0, 2)) + b" " * 3_000_000
    entries = [(EXPR0, good_rle()), (EXPR1, big), ("short/v1/1/empty.txt", b"")]
    limits = Limits(max_ratio=10**6)
    deflated = evaluate(gt, write_zip(tmp_path / "deflated.zip", entries), limits=limits)
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    assert evaluate(gt, path, limits=limits).expressions == deflated.expressions


def lying_entry(path: Path, method: int, holds: bytes, declares: bytes, crc_of: bytes) -> Path:
    """A one-entry zip holding `holds` compressed with `method` but declaring the size of `declares`."""
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr(EXPR0, holds)
    data = bytearray(path.read_bytes())
    for header, size_at, crc_at in ((data.find(b"PK\x03\x04"), 22, 14), (data.rfind(b"PK\x01\x02"), 24, 16)):
        data[header + size_at : header + size_at + 4] = struct.pack("<I", len(declares))
        data[header + crc_at : header + crc_at + 4] = struct.pack("<I", zlib.crc32(crc_of))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_it_inflates_a_bzip2_or_lzma_entry_no_further_than_it_declares(tmp_path, gt, method):
    # As zipfile does for deflate: the declared bytes are read, and their CRC decides.
    holds = good_rle() + b" " * 5000
    prefix = lying_entry(tmp_path / "prefix.zip", method, holds, declares=good_rle(), crc_of=good_rle())
    assert evaluate(gt, prefix).expressions == evaluate(gt, write_zip(tmp_path / "plain.zip", [(EXPR0, good_rle())])
                                                        ).expressions
    lying = lying_entry(tmp_path / "lying.zip", method, holds, declares=good_rle(), crc_of=holds)
    with pytest.raises(NotAZip) as caught:
        evaluate(gt, lying)
    assert "Bad CRC-32" in caught.value.message and caught.value.location.file == EXPR0


def many_entries(path: Path, count: int, declared: int | None = None) -> Path:
    """A zip of `count` empty entries (central directory only); its end record says `declared` entries."""
    records = b"".join(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0,
                                   0, 0, 0) + name for name in (b"%x" % i for i in range(count)))
    total = (count if declared is None else declared) & 0xFFFF
    path.write_bytes(records + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, total, total, len(records), 0, 0))
    return path


@pytest.mark.parametrize(("declared", "counted"), [(None, 200_000 % 2**16), (1, 200_000)],
                         ids=["declared", "lying_count"])
def test_it_refuses_too_many_entries_before_zipfile_reads_the_directory(tmp_path, gt, monkeypatch, declared, counted):
    # zipfile makes an object of ~500 bytes for each record (2 million: 1 GB), whatever the end record says.
    path = many_entries(tmp_path / "sub.zip", 200_000, declared)

    def not_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("zipfile read the central directory")

    monkeypatch.setattr("scoring.archive.zipfile.ZipFile", not_read)
    with pytest.raises(ZipBomb) as caught:
        evaluate(gt, path, limits=Limits(max_entries=1000))
    assert caught.value.message == f"the zip has {counted} entries; the limit is 1000"


def test_it_opens_a_zip_whose_directory_is_large_but_within_the_limit(tmp_path):
    path = many_entries(tmp_path / "sub.zip", 5000)
    with open_source(path, Limits(max_entries=100_000)) as source:
        assert len(source.files) == 5000


def test_it_names_the_missing_path_when_the_submission_does_not_exist(tmp_path, gt):
    with pytest.raises(NotAZip) as caught:
        evaluate(gt, tmp_path / "nope.zip")
    assert "does not exist" in caught.value.message and "nope.zip" in caught.value.message


def test_it_rejects_an_image_bomb_by_its_header_without_decoding_it(tmp_path, gt):
    # The IDAT holds 16 bytes for a 100000 x 100000 image: decoding it would be "damaged", not a bomb.
    for side in (100_000, 9000):
        root = write_files(tmp_path / f"sub{side}", {PNG0: png_header_only(side, side)})
        with pytest.raises(InvalidPNG) as caught:
            evaluate(gt, root)
        assert type(caught.value) is ImageBomb


# --- a submission can never take the worker down -------------------------------------------

CHILD = r"""
import json, sys
from scoring import evaluate, load_ground_truth, validate_submission
from scoring.errors import InvalidSubmission
gt = load_ground_truth(sys.argv[1])
codes = []
for path in sys.argv[2:]:
    try:
        evaluate(gt, path)
        codes.append("accepted")
    except InvalidSubmission as exc:
        codes.append(exc.code)
    codes.append(",".join(e.code for e in validate_submission(path).errors))
print(json.dumps(codes))
"""


def test_it_refuses_counts_that_would_crash_pycocotools_without_dying(tmp_path, gt_root):
    paths = [
        write_files(tmp_path / name, {EXPR0: rle_body(f00005={"size": [H, W], "counts": counts})})
        for name, counts in KILLERS.items()
    ]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(gt_root), *map(str, paths)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == ["malformed_rle"] * (2 * len(KILLERS))


@pytest.mark.parametrize("name", sorted(KILLERS))
def test_it_refuses_counts_that_would_crash_pycocotools_as_malformed_rle(name, tmp_path, gt):
    root = write_files(tmp_path / "sub", {EXPR0: rle_body(f00005={"size": [H, W], "counts": KILLERS[name]})})
    with pytest.raises(MalformedRLE) as caught:
        evaluate(gt, root)
    assert caught.value.location.frame == "00005"
