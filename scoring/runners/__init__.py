"""The reference model runners: baselines that produce a submission from the benchmark's public
inputs (meta file + frames), never from the ground truth.

Each runner is listed here with what `egomask run-baseline --list` shows; its module (and torch,
where it needs it) is imported only when it is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import Frames, Job, Model, Runner, RunnerError, check_frames, load_jobs, shard
from .driver import Progress, RunReport, run
from .output import merge

__all__ = ["RUNNERS", "Frames", "Job", "Model", "Progress", "RunReport", "Runner", "RunnerError", "check_frames",
           "get_runner", "load_jobs", "merge", "run", "shard"]


def _lazy(module: str, function: str, **fixed: Any):  # type: ignore[no-untyped-def]
    """A loader that imports `scoring.runners.<module>` only when a run starts."""

    def load(*, weights: Path | None, device: str, options: Mapping[str, str]) -> Model:
        loader = getattr(importlib.import_module(f"{__name__}.{module}"), function)
        try:
            return loader(weights=weights, device=device, options=options, **fixed)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] not in _EXTRA_LIBRARIES:
                raise
            raise RunnerError(f"this runner needs {exc.name.split('.')[0]}, which is not installed: install torch "
                              f"for your machine first, then pip install 'egomask[runners]' (docs/runners.md)"
                              ) from None

    return load


_EXTRA_LIBRARIES = {"torch", "transformers", "scipy", "safetensors", "tokenizers"}  # the [runners] extra
_GSAM2_OPTIONS = {
    "box_threshold": "Grounding DINO box threshold (0.35, the paper's)",
    "text_threshold": "Grounding DINO text threshold (0.35, the paper's; it labels boxes, the masks ignore it)",
    "batch_size": "frames per Grounding DINO batch (8)",
}
_ADAPTER_OPTIONS = {
    "python": "the Python of the model's own environment (required: it pins its own transformers)",
    "chunk": "frames per model call on long videos (Sa2VA: 32, VideoLISA: 64; 0: the whole video in one call, "
             "as the official runners do)",
}
_VIDEOLISA_OPTIONS = {
    **_ADAPTER_OPTIONS,
    "code": "a checkout of github.com/showlab/VideoLISA (required: the model's code)",
    "vision_tower": "a local folder of openai/clip-vit-large-patch14-336 (required)",
    "model_class": "the model class in that checkout (model.VideoLISA:VideoLISAForCausalLM)",
    "frames_sparse": "frames the MLLM sees, sampled over the whole video (32, the official script's)",
    "frames_dense": "of those, frames it sees at full token density (4)",
}

RUNNERS: dict[str, Runner] = {
    runner.name: runner
    for runner in [
        Runner("grounded-sam2", "Grounding DINO scores the expression on every frame; SAM 2.1 is prompted with the "
               "single most confident box of the video and propagates backward, then forward (the paper's "
               "protocol)", "1.0.0", True, ("cuda", "cpu"), _lazy("grounded_sam2", "load", key_frame="best"),
               _GSAM2_OPTIONS),
        Runner("grounded-sam2-naive", "Grounded-SAM2 started from the first frame with a detection instead of "
               "the most confident one (the paper's \"naive init\" ablation)", "1.0.0", True, ("cuda", "cpu"),
               _lazy("grounded_sam2", "load", key_frame="first"), _GSAM2_OPTIONS),
        Runner("sa2va", "Sa2VA (ByteDance Sa2VA-4B / -26B, its own remote code) run in its own environment; the "
               "video's first frames are its key frames", "1.0.0", True, ("cuda",),
               _lazy("adapters", "load", model="sa2va"), _ADAPTER_OPTIONS),
        Runner("videolisa", "VideoLISA-3.8B (its repository's model.evaluate) run in its own environment; the "
               "MLLM sees sparse frames of the whole video, SAM decodes every frame", "1.0.0", True, ("cuda",),
               _lazy("adapters", "load", model="videolisa"), _VIDEOLISA_OPTIONS),
        Runner("empty", "Predicts nothing anywhere: the lower bound every method must beat (weight-free)", "1.0.0",
               False, ("cpu",), _lazy("classical", "load_empty")),
        Runner("colour", "Classical, weight-free: the expression's colour words become HSV ranges, and the "
               "largest connected region of those colours is the mask on each frame (nothing when the "
               "expression names no colour)", "1.0.0", False, ("cpu",), _lazy("classical", "load_colour"),
               {"min_area": "smallest region kept, as a fraction of the frame (0.0005)"}),
    ]
}


def get_runner(name: str) -> Runner:
    try:
        return RUNNERS[name]
    except KeyError:
        raise RunnerError(f"no runner named {name!r}: the runners are {', '.join(RUNNERS)} "
                          f"(egomask run-baseline --list)") from None
