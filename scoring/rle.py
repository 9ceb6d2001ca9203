"""COCO run-length encoding: checked parsing without decoding frames.

pycocotools trusts its input: a counts string that ends in the middle of a number makes it read
past the end of the string, and counts that add up to more than height x width make `decode`
write past its buffer. A submission must never be able to do that to a worker, so every RLE is
checked here first. The check parses the compressed counts of many masks at once with numpy
(no per-character Python loop) and also yields each mask's area, so emptiness is known without
asking pycocotools again.

The compressed format (pycocotools `rleToString`): each count, after the first three, is stored
as the difference from the count two places before it; each value is written in 5-bit groups,
least significant first, as characters `chr(48 + group)`; bit 0x20 means "another group
follows" and bit 0x10 of the last group is the sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as _mask

# Seven 5-bit groups carry 35 bits, enough for any 32-bit count pycocotools can write.
_MAX_GROUP_CHARS = 7
_MAX_COUNT = 2**32 - 1


@dataclass(frozen=True)
class ParsedCounts:
    """Run lengths of many masks, concatenated. `offsets[i]:offsets[i+1]` are mask i's runs."""

    counts: np.ndarray  # int64, zeros first, then ones, alternating
    offsets: np.ndarray  # int64, len = number of masks + 1
    areas: np.ndarray  # int64, foreground pixels per mask

    def runs(self, i: int) -> np.ndarray:
        return self.counts[self.offsets[i] : self.offsets[i + 1]]


class RLEFormatError(ValueError):
    """A counts string is not valid; `index` is the position of the bad mask in the batch."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(reason)


def _segment_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sum of values[starts[i]:ends[i]] for every i (empty segments sum to 0)."""
    running = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return running[ends] - running[starts]


def parse_counts(strings: Sequence[str], pixels: Sequence[int]) -> ParsedCounts:
    """Parse compressed counts strings, checking each adds up to its mask's `pixels` (h*w).

    Raises RLEFormatError naming the first bad mask. Works on all strings in one vectorised pass.
    """
    n = len(strings)
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
    string_end = np.cumsum(lengths)
    string_start = string_end - lengths
    expected = np.asarray(pixels, dtype=np.int64).reshape(n)

    def owner(position: int) -> int:
        return int(np.searchsorted(string_end, position, side="right"))

    try:
        raw = "".join(strings).encode("ascii")
    except UnicodeEncodeError as exc:
        raise RLEFormatError(owner(exc.start), "the counts string has a non-ASCII character") from None
    values = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    bad = np.flatnonzero((values < 0) | (values > 63))
    if bad.size:
        character = chr(raw[bad[0]])
        raise RLEFormatError(owner(int(bad[0])), f"the counts string has an invalid character {character!r}")

    more = (values & 0x20) != 0
    nonempty = lengths > 0
    last_char = np.where(nonempty, string_end - 1, 0)
    cut = np.flatnonzero(nonempty & more[last_char]) if values.size else np.zeros(0, np.int64)
    if cut.size:
        raise RLEFormatError(int(cut[0]), "the counts string ends in the middle of a number")

    # Groups of characters, one per number: a group ends at a character without the 0x20 bit.
    group_end = ~more
    group_starts = np.flatnonzero(np.concatenate(([True], group_end[:-1]))) if values.size else np.zeros(0, np.int64)
    group_lengths = np.diff(np.append(group_starts, values.size))
    too_long = np.flatnonzero(group_lengths > _MAX_GROUP_CHARS)
    if too_long.size:
        raise RLEFormatError(owner(int(group_starts[too_long[0]])), "the counts string holds a too large number")

    # Value of each group: its 5-bit digits shifted into place; the last digit's 0x10 is a sign.
    group_of_char = np.repeat(np.arange(group_starts.size), group_lengths)
    digit_index = np.arange(values.size) - group_starts[group_of_char]
    digits = (values & 0x1F) << (5 * digit_index)
    deltas = _segment_sums(digits, group_starts, group_starts + group_lengths)
    negative = (values[group_starts + group_lengths - 1] & 0x10) != 0 if values.size else np.zeros(0, bool)
    deltas[negative] -= np.left_shift(1, 5 * group_lengths[negative])

    # Runs per mask and, within each mask, each run's index (0, 1, 2, ...).
    runs_per_mask = _segment_sums(group_end.astype(np.int64), string_start, string_end)
    offsets = np.concatenate(([0], np.cumsum(runs_per_mask))).astype(np.int64)
    mask_of_run = np.repeat(np.arange(n), runs_per_mask)
    index = np.arange(deltas.size) - offsets[mask_of_run]

    # Undo the delta coding: count[i] = delta[i] + count[i-2] for i > 2, that is a running sum
    # within each mask over the odd indices, and over the even indices from 2 on.
    counts = deltas.copy()
    for chain in ((index % 2 == 1), (index >= 2) & (index % 2 == 0)):
        running = np.concatenate(([0], np.cumsum(np.where(chain, deltas, 0))))
        counts[chain] = running[1:][chain] - running[offsets[:-1]][mask_of_run[chain]]

    out_of_range = np.flatnonzero((counts < 0) | (counts > _MAX_COUNT))
    if out_of_range.size:
        raise RLEFormatError(int(mask_of_run[out_of_range[0]]), "the counts decode to a negative or too large run")
    totals = _segment_sums(counts, offsets[:-1], offsets[1:])
    wrong = np.flatnonzero(totals != expected)
    if wrong.size:
        i = int(wrong[0])
        raise RLEFormatError(
            i, f"the run lengths add up to {int(totals[i])} pixels, but height x width is {int(expected[i])}"
        )
    areas = _segment_sums(np.where(index % 2 == 1, counts, 0), offsets[:-1], offsets[1:])
    return ParsedCounts(counts=counts, offsets=offsets, areas=areas)


def mask_size(value: object) -> tuple[int, int] | None:
    """(height, width) from an RLE's "size" if it is two positive integers, else None."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return value[0], value[1]
    return None


def check_uncompressed(counts: Sequence[object], pixels: int) -> tuple[list[int], int]:
    """Check an uncompressed counts list; return it as ints and the mask's area."""
    if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= _MAX_COUNT for c in counts):
        raise RLEFormatError(0, "uncompressed counts must be non-negative integers")
    values = [int(c) for c in counts]  # type: ignore[call-overload]
    if sum(values) != pixels:
        raise RLEFormatError(0, f"the run lengths add up to {sum(values)} pixels, but height x width is {pixels}")
    return values, sum(values[1::2])


def compress(counts: Sequence[int], height: int, width: int) -> str:
    """Compressed counts string of run lengths `counts` (zeros first) for an h x w mask."""
    rle = _mask.frPyObjects({"size": [height, width], "counts": [int(c) for c in counts]}, height, width)
    return rle["counts"].decode("ascii")


def encode(mask: np.ndarray) -> dict[str, object]:
    """COCO RLE of a 2-D boolean/0-1 mask, with counts as str (JSON-ready)."""
    rle = _mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode(mask_rle: dict[str, object]) -> np.ndarray:
    """Dense uint8 (height, width) mask of an RLE; checks the counts first, so it never overruns."""
    height, width = (int(v) for v in mask_rle["size"])  # type: ignore[union-attr]
    counts = mask_rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    runs = parse_counts([counts], [height * width]).runs(0)  # type: ignore[list-item]
    flat = np.repeat((np.arange(runs.size) % 2).astype(np.uint8), runs)
    return flat.reshape((width, height)).T


def iou(pred_counts: str, gt_counts: str, height: int, width: int) -> float:
    """IoU of two non-empty masks given as checked compressed counts strings."""
    size = [height, width]
    return float(_mask.iou([{"size": size, "counts": pred_counts}], [{"size": size, "counts": gt_counts}], [0])[0][0])
