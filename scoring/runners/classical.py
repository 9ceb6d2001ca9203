"""Weight-free CPU baselines, so that a fresh install has baseline rows produced by a runner.

- `empty`: no mask anywhere (the lower bound; T_recall 0, IoU_gold_pred 0).
- `colour`: the colour words of the expression → hue/saturation/value ranges → on each frame the
  largest 8-connected region of pixels in those ranges, kept if it covers at least `min_area` of
  the frame. An expression that names no colour gets no mask. It reads only the frames and the
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


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation, value of an (H, W, 3) uint8 image, in float32."""
    pixels = rgb.astype(np.float32) / 255.0
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # Element-wise over the three planes: a reduction over the last axis is ~15x slower in numpy.
    high = np.maximum(np.maximum(r, g), b)
    low = np.minimum(np.minimum(r, g), b)
    span = high - low
    safe = np.where(span > 0, span, 1.0)
    hue = np.select([high == r, high == g], [(g - b) / safe % 6.0, (b - r) / safe + 2.0], (r - g) / safe + 4.0)
    hue = np.where(span > 0, hue * 60.0, 0.0)
    saturation = np.where(high > 0, span / np.where(high > 0, high, 1.0), 0.0)
    return hue, saturation, high


def colour_mask(rgb: np.ndarray, colours: list[str]) -> np.ndarray:
    """Pixels of any of the colours."""
    hue, saturation, value = _hsv(rgb)
    mask = np.zeros(hue.shape, dtype=bool)
    for colour in colours:
        ranges, s_low, s_high, v_low, v_high = COLOURS[colour]
        in_hue = np.zeros_like(mask)
        for h_low, h_high in ranges:
            in_hue |= (hue >= h_low) & (hue < h_high)
        mask |= in_hue & (saturation >= s_low) & (saturation <= s_high) & (value >= v_low) & (value <= v_high)
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


class ColourModel:
    def __init__(self, min_area: float) -> None:
        self.min_area = min_area

    def predict(self, job: Job, frames: Frames) -> Iterator[tuple[str, np.ndarray]]:
        colours = colour_words(job.expression)
        if not colours:
            return
        for index, name in enumerate(frames.names):
            rgb = frames.read(index)
            region = largest_region(colour_mask(rgb, colours), max(1, round(self.min_area * rgb.shape[0] *
                                                                            rgb.shape[1])))
            if region is not None:
                yield name, region

    def close(self) -> None:
        pass


def load_empty(*, weights: Path | None, device: str, options: Mapping[str, str]) -> EmptyModel:
    return EmptyModel()


def load_colour(*, weights: Path | None, device: str, options: Mapping[str, str]) -> ColourModel:
    text = options.get("min_area", "0.0005")
    try:
        min_area = float(text)
        if not 0 <= min_area < 1:
            raise ValueError
    except ValueError:
        raise RunnerError(f"colour: min_area is a fraction of the frame between 0 and 1, not {text!r}") from None
    return ColourModel(min_area)
