"""Weight-free CPU baselines, so that a fresh install has baseline rows produced by a runner.

- `empty`: no mask anywhere (the lower bound; T_recall 0, IoU_gold_pred 0).
- `colour`: the colour words of the expression → hue/saturation/value ranges; on each frame, the
  pixels in those ranges that also differ from the video's background (the per-pixel median of up
  to 25 evenly spaced frames: what stays put is scenery, what is held or moved is a candidate);
  the largest 8-connected region of them is the mask, kept if it covers at least `min_area` of the
  frame. An expression that names no colour gets no mask. It reads only the frames and the
  expression, never the ground truth: an honest, if weak, classical method.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .base import Frames, Job, RunnerError

# Hue in degrees [0, 360), saturation and value in [0, 1]: (hue ranges, min sat, max sat, min value, max value).
_HUE = dict[str, tuple[tuple[tuple[float, float], ...], float, float, float, float]]
COLOURS: _HUE = {
    "red": (((0, 15), (340, 360)), 0.45, 1.0, 0.25, 1.0),
    "orange": (((15, 40),), 0.5, 1.0, 0.4, 1.0),
    "yellow": (((40, 70),), 0.45, 1.0, 0.4, 1.0),
    "green": (((75, 165),), 0.35, 1.0, 0.2, 1.0),
    "blue": (((195, 255),), 0.4, 1.0, 0.2, 1.0),
    "purple": (((260, 320),), 0.35, 1.0, 0.2, 1.0),
    "pink": (((300, 345),), 0.2, 0.6, 0.6, 1.0),
    "brown": (((10, 40),), 0.35, 1.0, 0.12, 0.55),
    "white": (((0, 360),), 0.0, 0.15, 0.82, 1.0),
    "grey": (((0, 360),), 0.0, 0.12, 0.35, 0.75),
    "black": (((0, 360),), 0.0, 1.0, 0.0, 0.16),
}
_ALIASES = {"gray": "grey", "silver": "grey", "violet": "purple", "dark": None}
_WORD = re.compile(r"[a-z]+")


def colour_words(expression: str) -> list[str]:
    """The colours an expression names, in order, each once (`"the grey or silver pan"` → ["grey"])."""
    found: list[str] = []
    for word in _WORD.findall(expression.lower()):
        colour = _ALIASES.get(word, word)
        if colour in COLOURS and colour not in found:
            found.append(colour)
    return found


def _hsv(rgb: np.ndarray) -> np.ndarray:
    """Pillow's HSV of an (H, W, 3) uint8 image (in C): hue, saturation, value each in 0..255."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").convert("HSV"))


def colour_mask(rgb: np.ndarray, colours: list[str]) -> np.ndarray:
    """Pixels of any of the colours (compared in uint8: no float copy of the frame)."""
    hsv = _hsv(rgb)
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    mask = np.zeros(hue.shape, dtype=bool)
    for colour in colours:
        ranges, s_low, s_high, v_low, v_high = COLOURS[colour]
        in_hue = np.zeros_like(mask)
        for h_low, h_high in ranges:
            # hue ranges are half-open [low, high) in degrees
            in_hue |= (hue >= int(np.ceil(h_low * 256 / 360))) & (hue < int(np.ceil(h_high * 256 / 360)))
        s0, s1 = round(s_low * 255), round(s_high * 255)
        v0, v1 = round(v_low * 255), round(v_high * 255)
        mask |= in_hue & (saturation >= s0) & (saturation <= s1) & (value >= v0) & (value <= v1)
    return mask


def largest_region(mask: np.ndarray, min_pixels: int) -> np.ndarray | None:
    """The largest 8-connected region of `mask`, or None when none has `min_pixels`."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(sizes))
    if sizes[best] < min_pixels:
        return None
    return labels == best + 1


class EmptyModel:
    def predict(self, job: Job, frames: Frames) -> Iterator[tuple[str, np.ndarray]]:
        return iter(())

    def close(self) -> None:
        pass


BACKGROUND_FRAMES = 25
BACKGROUND_SIDE = 320  # the background is estimated at this size at most (memory stays small on 1080p)
FOREGROUND_DIFFERENCE = 40  # grey levels, on any channel


def _step(height: int, width: int) -> int:
    return max(1, -(-max(height, width) // BACKGROUND_SIDE))


def background(frames: Frames) -> np.ndarray:
    """The video's background at reduced size: the per-pixel median of evenly spaced frames."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), BACKGROUND_FRAMES)).round().astype(int))
    first = frames.read(int(picks[0]))
    step = _step(*first.shape[:2])
    samples = [first[::step, ::step]] + [frames.read(int(i))[::step, ::step] for i in picks[1:]]
    return np.median(np.stack(samples), axis=0).astype(np.int16)


def foreground(rgb: np.ndarray, scenery: np.ndarray) -> np.ndarray:
    """Pixels that differ from the background (compared at its size, then scaled back up)."""
    step = _step(*rgb.shape[:2])
    small = rgb[::step, ::step].astype(np.int16)
    if small.shape != scenery.shape:  # a frame of another size than the others: no background to go by
        return np.ones(rgb.shape[:2], dtype=bool)
    moved = (np.abs(small - scenery).max(axis=2) > FOREGROUND_DIFFERENCE)
    return np.repeat(np.repeat(moved, step, axis=0), step, axis=1)[: rgb.shape[0], : rgb.shape[1]]


class ColourModel:
    def __init__(self, min_area: float) -> None:
        self.min_area = min_area

    def predict(self, job: Job, frames: Frames) -> Iterator[tuple[str, np.ndarray]]:
        colours = colour_words(job.expression)
        if not colours:
            return
        scenery = background(frames)
        for index, name in enumerate(frames.names):
            rgb = frames.read(index)
            moved = foreground(rgb, scenery)
            rows, cols = np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0))
            if rows.size == 0:
                continue
            # Colours only where something moved (the frame's colour conversion is the costly part).
            window = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            candidates = np.zeros_like(moved)
            candidates[window] = colour_mask(rgb[window], colours) & moved[window]
            region = largest_region(candidates, max(1, round(self.min_area * rgb.shape[0] * rgb.shape[1])))
            if region is not None:
                yield name, region

    def close(self) -> None:
        pass


def load_empty(*, weights: Path | None, device: str, options: Mapping[str, str]) -> EmptyModel:
    return EmptyModel()


def load_colour(*, weights: Path | None, device: str, options: Mapping[str, str]) -> ColourModel:
    import scipy.ndimage  # noqa: F401  (here, so that a missing scipy is said before the first frame)

    text = options.get("min_area", "0.0005")
    try:
        min_area = float(text)
        if not 0 <= min_area < 1:
            raise ValueError
    except ValueError:
        raise RunnerError(f"colour: min_area is a fraction of the frame between 0 and 1, not {text!r}") from None
    return ColourModel(min_area)
