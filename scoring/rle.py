"""COCO run-length encoding: checked parsing and exact intersections, without decoding frames.

pycocotools trusts its input: a counts string that ends in the middle of a number makes it read
past the end of the string, and counts that add up to more than height x width make `decode`
write past its buffer. Scoring therefore never hands a submission's string to pycocotools: the
strings are parsed and checked here (many masks at once, vectorised with numpy, no per-character
Python loop), which also yields each mask's area, and intersections are counted on the parsed
runs. pycocotools is only used to encode masks we made ourselves (PNG input, synthetic data).

The compressed format (pycocotools `rleToString`): each count, after the first three, is stored
as the difference from the count two places before it; each value is written in 5-bit groups,
least significant first, as characters `chr(48 + group)`; bit 0x20 means "another group
follows" and bit 0x10 of the last group is the sign. pycocotools keeps the counts as unsigned
32-bit numbers; the parser here computes in 32 bits too, so what it accepts decodes exactly as
pycocotools would decode it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Six 5-bit groups carry 30 bits (a signed value of magnitude below 2**29): enough for every
# count and difference of a mask of up to MAX_PIXELS pixels, which is all pycocotools writes.
# pycocotools' own parser shifts a 32-bit int by 30 for a seventh group, which C leaves undefined.
_MAX_GROUP_CHARS = 6
MAX_PIXELS = 2**28  # height x width of one mask (EgoMask frames are ~2 million pixels)


@dataclass(frozen=True)
class ParsedCounts:
    """Run lengths of many masks, concatenated. `offsets[i]:offsets[i+1]` are mask i's runs."""

    counts: np.ndarray  # int32, zeros first, then ones, alternating
    offsets: np.ndarray  # int64, len = number of masks + 1
    areas: np.ndarray  # int64, foreground pixels per mask
    pixels: np.ndarray  # int64, height x width per mask (what its runs add up to)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def runs(self, i: int) -> np.ndarray:
        return self.counts[self.offsets[i] : self.offsets[i + 1]]


class RLEFormatError(ValueError):
    """A counts string is not valid; `index` is the position of the bad mask in the batch."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(reason)


def _chains(view: np.ndarray, starts: np.ndarray, stops: np.ndarray, exclude_first: np.ndarray,
            out: np.ndarray) -> None:
    """Running sums of `view` into `out`, starting again at every segment [starts[i], stops[i]).

    Segments tile the view in order; some may be empty. Where `exclude_first[i]`, the segment's
    first value is left out of its running sums (it is a count of its own, not a difference).
    The sums wrap around in 32 bits exactly as pycocotools' unsigned counts do.
    """
    work = view.copy()
    full = stops > starts
    first = starts[full]
    work[starts[exclude_first & full]] = 0
    if first.size > 1:
        totals = np.add.reduceat(work, first)
        # Subtract, at each segment's first value, what the segment before it added up to:
        # one running sum then restarts at every segment.
        work[first[1:]] -= totals[:-1]
    np.cumsum(work, dtype=np.int32, out=out)


def parse_counts(strings: Sequence[str], pixels: int | Sequence[int]) -> ParsedCounts:
    """Parse compressed counts strings, checking each adds up to its mask's `pixels` (h*w).

    Raises RLEFormatError naming the first bad mask. One vectorised pass over all strings: the
    characters are checked and grouped into numbers, and the differences pycocotools stores
    (each count after the third is kept as its difference from the count two places before)
    are undone with one running sum over the even and the odd positions.
    """
    n = len(strings)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return ParsedCounts(np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64), empty, empty)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    string_end = np.cumsum(lengths)

    def owner(position: int) -> int:
        return int(np.searchsorted(string_end, position, side="right"))

    try:
        raw = "".join(strings).encode("ascii")
    except UnicodeEncodeError as exc:
        raise RLEFormatError(owner(exc.start), "the counts string has a non-ASCII character") from None
    chars = np.frombuffer(raw, dtype=np.uint8) - np.uint8(48)  # below '0' wraps around to >= 208
    largest = int(chars.max()) if chars.size else 0
    if largest > 63:
        bad = int(np.argmax(chars > 63))
        raise RLEFormatError(owner(bad), f"the counts string has an invalid character {chr(raw[bad])!r}")
    final = chars < 32  # a character without the 0x20 "more follows" bit ends a number
    ends = np.flatnonzero(final)
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.searchsorted(ends, string_end)
    per = np.diff(offsets)
    last = final[np.maximum(string_end - 1, 0)] if final.size else np.zeros(n, dtype=bool)
    broken = (per == 0) | ~last
    if broken.any():
        i = int(np.argmax(broken))
        if lengths[i] and not last[i]:
            raise RLEFormatError(i, "the counts string ends in the middle of a number")
        expected = pixels if isinstance(pixels, int) else pixels[i]
        raise RLEFormatError(i, f"the run lengths add up to 0 pixels, but height x width is {expected}")

    # Most numbers are one character (differences are small): its value is the low four bits,
    # negative when bit 0x10 is set. Longer numbers get their earlier 5-bit digits added below.
    top = chars[ends]
    values = ((top & 15).view(np.int8) - (top & 16).view(np.int8)).astype(np.int32)
    if largest >= 32:
        _add_leading_digits(values, chars, final, ends, owner)

    # Undo the differences: count[i] = values[i] + count[i-2] for i >= 3 within a mask, i.e.
    # running sums along every other position, restarting per mask; counts 0, 1, 2 are as stored.
    # A mask starting at an even position has its even-indexed runs in values[0::2], one starting
    # at an odd position in values[1::2].
    first = offsets[:-1]
    starts_even, stops_even = (first + 1) // 2, (offsets[1:] + 1) // 2
    starts_odd, stops_odd = first // 2, offsets[1:] // 2
    first_is_even = (first & 1) == 0
    counts = np.empty_like(values)
    _chains(values[0::2], starts_even, stops_even, first_is_even, counts[0::2])
    _chains(values[1::2], starts_odd, stops_odd, ~first_is_even, counts[1::2])
    counts[first] = values[first]
    if counts.min() < 0:
        bad = int(np.argmax(counts < 0))
        raise RLEFormatError(int(np.searchsorted(offsets, bad, side="right") - 1),
                             "the counts decode to a negative or too large run")
    totals = np.add.reduceat(counts, first, dtype=np.int64)
    wrong = np.flatnonzero(totals != pixels)
    if wrong.size:
        i = int(wrong[0])
        expected = pixels if isinstance(pixels, int) else pixels[i]
        raise RLEFormatError(i, f"the run lengths add up to {int(totals[i])} pixels, but height x width is {expected}")
    # Foreground runs are the odd ones of each mask: the odd positions of a mask starting at an
    # even position, the even positions of one starting at an odd position.
    on_even = np.zeros(n, dtype=np.int64)
    full = stops_even > starts_even
    if full.any():
        on_even[full] = np.add.reduceat(counts[0::2], starts_even[full], dtype=np.int64)
    areas = np.where(first_is_even, totals - on_even, on_even)
    return ParsedCounts(counts=counts, offsets=offsets, areas=areas, pixels=totals)


def _add_leading_digits(values: np.ndarray, chars: np.ndarray, final: np.ndarray, ends: np.ndarray,
                        owner: Callable[[int], int]) -> None:
    """Complete `values` (the signed last digit of each number) for numbers of several characters."""
    at = np.flatnonzero(final[1:] & ~final[:-1]) + 1  # last characters that follow a "more" character
    multi = np.searchsorted(ends, at)
    digits = np.ones(at.size, dtype=np.int32)  # characters in the number
    more = np.ones(at.size, dtype=bool)
    for k in range(1, _MAX_GROUP_CHARS + 1):
        more &= ~final[np.maximum(at - k, -1)]  # final[-1] is True: the input ends a number
        digits += more
    if more.any():
        raise RLEFormatError(owner(int(at[np.argmax(more)])), "the counts string holds a too large number")
    low = np.zeros(at.size, dtype=np.int32)
    for k in range(1, int(digits.max())):
        inside = k < digits
        digit = (chars[np.maximum(at - k, 0)] & 31).astype(np.int32)
        low += np.where(inside, digit << np.where(inside, 5 * (digits - 1 - k), 0), 0)
    values[multi] = values[multi] * (np.int32(1) << (5 * (digits - 1))) + low


def mask_size(value: object) -> tuple[int, int] | None:
    """(height, width) from an RLE's "size" if it is two positive integers whose product is at
    most MAX_PIXELS, else None."""
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(type(v) is int and v > 0 for v in value)
        and value[0] * value[1] <= MAX_PIXELS
    ):
        return value[0], value[1]
    return None


SIZE_RULE = f'"size" must be [height, width]: two positive integers, at most {MAX_PIXELS} pixels in all'


def check_uncompressed(counts: Sequence[object], pixels: int) -> list[int]:
    """Check an uncompressed counts list (COCO's other RLE form); return it as ints."""
    if not all(type(c) is int and 0 <= c <= pixels for c in counts):
        raise RLEFormatError(0, "uncompressed counts must be non-negative integers")
    values = [int(c) for c in counts]  # type: ignore[call-overload]
    if sum(values) != pixels:
        raise RLEFormatError(0, f"the run lengths add up to {sum(values)} pixels, but height x width is {pixels}")
    return values


def compress(counts: Sequence[int], height: int, width: int) -> str:
    """Compressed counts string of run lengths `counts` (zeros first) for an h x w mask."""
    from pycocotools import mask as _mask  # only encoding needs it: scoring works on the parsed runs

    rle = _mask.frPyObjects({"size": [height, width], "counts": [int(c) for c in counts]}, height, width)
    return rle["counts"].decode("ascii")


def encode(mask: np.ndarray) -> dict[str, object]:
    """COCO RLE of a 2-D boolean/0-1 mask, with counts as str (JSON-ready)."""
    from pycocotools import mask as _mask

    rle = _mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode(mask_rle: dict[str, object]) -> np.ndarray:
    """Dense uint8 (height, width) mask of an RLE; checks the counts first, so it never overruns."""
    height, width = (int(v) for v in mask_rle["size"])  # type: ignore[union-attr]
    counts = mask_rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    runs = parse_counts([counts], height * width).runs(0)  # type: ignore[list-item]
    flat = np.repeat((np.arange(runs.size) % 2).astype(np.uint8), runs)
    return flat.reshape((width, height)).T


_NO_RUN = np.zeros(1, dtype=np.int32)
_LINE_LIMIT = 2**31 - 1  # positions on the line are int32


def _line(parsed: ParsedCounts, chosen: Sequence[int]) -> np.ndarray:
    """Run ends (int32) of the chosen masks laid end to end on one line, so that mask k covers
    [sum of the earlier masks' pixels, ...), each given an even number of runs (an empty
    foreground run at the end where needed): foreground run t is [line[2t], line[2t+1])."""
    pieces = []
    for i in chosen:
        start, stop = parsed.offsets[i], parsed.offsets[i + 1]
        pieces.append(parsed.counts[start:stop])
        if (stop - start) & 1:
            pieces.append(_NO_RUN)
    return np.cumsum(np.concatenate(pieces), dtype=np.int32)


def intersections(a: ParsedCounts, a_masks: Sequence[int], b: ParsedCounts, b_masks: Sequence[int]) -> np.ndarray:
    """Foreground pixels that mask a_masks[k] of `a` shares with mask b_masks[k] of `b`, for each k.

    Both masks of a pair have the same size. Exact integers, computed on the runs: for every
    foreground run of `a`, the foreground of `b` before its end minus the foreground before its start.
    """
    a_masks, b_masks = [int(i) for i in a_masks], [int(i) for i in b_masks]
    out = np.zeros(len(a_masks), dtype=np.int64)
    start = 0
    while start < len(a_masks):
        # As many pairs laid end to end as int32 positions allow.
        stop, total = start, 0
        while stop < len(a_masks) and (stop == start or total + int(a.pixels[a_masks[stop]]) <= _LINE_LIMIT):
            total += int(a.pixels[a_masks[stop]])
            stop += 1
        chosen = a_masks[start:stop]
        out[start:stop] = _intersect(_line(a, chosen), _line(b, b_masks[start:stop]),
                                     a.offsets[np.asarray(chosen) + 1] - a.offsets[chosen])
        start = stop
    return out


def _intersect(a_line: np.ndarray, b_line: np.ndarray, a_runs: np.ndarray) -> np.ndarray:
    b_starts, b_ends = b_line[0::2], b_line[1::2]
    # Foreground of b before x: all of b's runs ending at or before x, plus the part of the next one before x.
    covered = np.concatenate(([0], np.cumsum(b_ends - b_starts, dtype=np.int64)))
    after = np.concatenate((b_starts, [_LINE_LIMIT]))
    done = np.searchsorted(b_ends, a_line, side="right")
    before = covered[done] + np.maximum(a_line - after[done], 0)
    per_run = before[1::2] - before[0::2]
    pairs_of_runs = (a_runs + (a_runs & 1)) // 2
    return np.add.reduceat(per_run, np.cumsum(pairs_of_runs) - pairs_of_runs)
