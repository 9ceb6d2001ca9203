"""Grounding DINO's and SAM 2.1's input and output transforms in plain torch, on the run's device.

Why not the transformers processors: SAM2's image and video processors are torchvision-backed, and
torchvision does not import beside the CPU torch this project pins. Grounding DINO's processor
does load without torchvision (transformers 5 falls back to its PIL backend), but that backend
resizes each full-resolution frame on one CPU core, which would cost more than the model on a GPU;
here a frame is uploaded once as uint8 and resized on the device. tests/scoring/runners compares
each transform with the processor's output (SAM2's where torchvision imports).

torch is imported inside the functions: importing this module must not import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DinoInputSpec:
    """How Grounding DINO's processor sizes and normalises a frame (its preprocessor config)."""

    shortest_edge: int = 800
    longest_edge: int = 1333
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def dino_input_spec(folder: Path) -> DinoInputSpec:
    """The sizes and normalisation saved with a Grounding DINO model: `preprocessor_config.json`
    (the hub's layout), else the image processor inside `processor_config.json` (what a recent
    `save_pretrained` of the processor writes), else the published model's 800/1333 and ImageNet."""
    config: dict[str, Any] = {}
    if (folder / "preprocessor_config.json").is_file():
        config = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    elif (folder / "processor_config.json").is_file():
        config = json.loads((folder / "processor_config.json").read_text(encoding="utf-8")).get("image_processor", {})
    size = config.get("size") or {}
    default = DinoInputSpec()
    return DinoInputSpec(
        shortest_edge=int(size.get("shortest_edge", default.shortest_edge)),
        longest_edge=int(size.get("longest_edge", default.longest_edge)),
        mean=tuple(float(v) for v in config.get("image_mean", default.mean)),  # type: ignore[arg-type]
        std=tuple(float(v) for v in config.get("image_std", default.std)),  # type: ignore[arg-type]
    )


def dino_size(height: int, width: int, shortest: int, longest: int) -> tuple[int, int]:
    """The (height, width) Grounding DINO's processor resizes a frame to: the short side to
    `shortest`, unless that makes the long side exceed `longest`, in which case the long side is
    `longest` (the aspect ratio kept; transformers' rounding, so the shapes match exactly)."""
    short, long = float(min(height, width)), float(max(height, width))
    target = float(shortest)
    exact = None
    if long / short * target > longest:
        exact = longest * short / long
        target = float(int(round(exact)))
    if (height <= width and height == target) or (width <= height and width == target):
        return height, width
    ratio_source = exact if exact is not None else target
    if width < height:
        return int(ratio_source * height / width), int(target)
    return int(target), int(ratio_source * width / height)


def _resized(image: np.ndarray, size: tuple[int, int], device: str) -> torch.Tensor:
    """An (H, W, 3) uint8 frame as a (3, h, w) float tensor of 0..255 values on `device`, resized
    like the processors do (bilinear with antialiasing, rounded back to whole values, as resizing
    the uint8 image does)."""
    import torch
    import torch.nn.functional as F

    # PIL's arrays are read-only; torch wants a writable one even though nothing writes to it.
    array = image if image.flags.writeable and image.flags.c_contiguous else np.array(image)
    pixels = torch.from_numpy(array).to(device, non_blocking=True)
    pixels = pixels.permute(2, 0, 1).unsqueeze(0).float()
    if tuple(pixels.shape[-2:]) != size:
        pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
        pixels = pixels.round_().clamp_(0, 255)
    return pixels[0]


def _normalised(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    import torch

    m = torch.tensor(mean, device=pixels.device, dtype=pixels.dtype).view(3, 1, 1)
    s = torch.tensor(std, device=pixels.device, dtype=pixels.dtype).view(3, 1, 1)
    return (pixels / 255.0 - m) / s


def dino_pixels(images: list[np.ndarray], spec: DinoInputSpec, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch for Grounding DINO: (pixel_values (B, 3, h, w), pixel_mask (B, h, w)). Frames of
    different sizes are padded at the bottom and right with zeros, the mask marking real pixels."""
    import torch

    resized = [_normalised(_resized(image, dino_size(image.shape[0], image.shape[1], spec.shortest_edge,
                                                     spec.longest_edge), device), spec.mean, spec.std)
               for image in images]
    height = max(p.shape[1] for p in resized)
    width = max(p.shape[2] for p in resized)
    values = torch.zeros((len(resized), 3, height, width), device=device)
    mask = torch.zeros((len(resized), height, width), dtype=torch.long, device=device)
    for index, pixels in enumerate(resized):
        values[index, :, : pixels.shape[1], : pixels.shape[2]] = pixels
        mask[index, : pixels.shape[1], : pixels.shape[2]] = 1
    return values, mask


def sam2_pixels(image: np.ndarray, size: int, device: str) -> torch.Tensor:
    """A frame as SAM2's video processor gives it: (3, size, size), resized (the aspect ratio not
    kept), scaled to 0..1 and normalised with the ImageNet mean and deviation."""
    return _normalised(_resized(image, (size, size), device), IMAGENET_MEAN, IMAGENET_STD)


def sam2_box_prompt(box: tuple[float, float, float, float], height: int, width: int, size: int,
                    device: str) -> dict[str, torch.Tensor]:
    """A box in frame pixels (x0, y0, x1, y1) as SAM2's point inputs: its two corners in the
    model's input coordinates, labelled 2 (top left) and 3 (bottom right), as SAM2's processor
    adds a box to an inference session."""
    import torch

    x0, y0, x1, y1 = box
    coords = torch.tensor([[[[x0 * size / width, y0 * size / height], [x1 * size / width, y1 * size / height]]]],
                          dtype=torch.float32, device=device)
    labels = torch.tensor([[[2, 3]]], dtype=torch.int32, device=device)
    return {"point_coords": coords, "point_labels": labels}


def frame_mask(low_res_logits: torch.Tensor, size: int, height: int, width: int) -> np.ndarray:
    """SAM2's low-resolution mask logits (…, h, w) of one object as the frame's (height, width)
    boolean mask: upsampled to the model's input size, then to the frame's, thresholded at 0 (the
    video processor's post_process_masks, without padding to remove)."""
    import torch.nn.functional as F

    logits = low_res_logits.reshape(1, 1, *low_res_logits.shape[-2:]).float()
    logits = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
    logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return (logits[0, 0] > 0).cpu().numpy()
