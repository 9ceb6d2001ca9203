"""Grounded-SAM2, the paper's strongest system, with transformers' Grounding DINO and SAM 2.1 video.

The protocol (the official evaluation/groundedsam2 code):
1. The expression becomes a caption: a trailing "." dropped, lower-cased, ". " → ";", then "." appended.
2. Grounding DINO scores the caption on every frame (in batches, on the device). A frame's
   detection is its most confident box, kept when its score passes the box threshold (0.35).
3. The key frame: the single most confident detection of the whole video (`key_frame="best"`,
   earliest on a tie), or the first frame with any detection (`"first"`, the paper's naive init,
   which stops scoring there). No detection anywhere: no masks.
4. SAM 2.1 is prompted with the key frame's box (clipped to the frame) and propagates backward to
   the first frame, then, prompted afresh, forward to the last: the two passes of the official
   code, which tracks each direction independently. Every frame gets exactly one mask; the
   non-empty ones are written, at the frame's size.

Memory stays flat on long videos: frames are read one at a time (a background thread reads a few
ahead) and preprocessed on the device when the model asks for them, never held for the whole
video; and SAM2's per-frame memories older than it can ever look back are dropped as it goes.

Weights (a local folder; docs/runners.md says how to download them):
    <weights>/grounding-dino/   e.g. IDEA-Research/grounding-dino-tiny (the paper's Swin-T) or -base
    <weights>/sam2/             e.g. facebook/sam2.1-hiera-large (the paper's)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import gsam2_inputs as inputs
from .base import Frames, Job, RunnerError

KEY_FRAMES = ("best", "first")
DINO_FOLDER = "grounding-dino"
SAM2_FOLDER = "sam2"
_DOWNLOADS = {DINO_FOLDER: "IDEA-Research/grounding-dino-tiny", SAM2_FOLDER: "facebook/sam2.1-hiera-large"}


def caption(expression: str) -> str:
    """The official code's caption of an expression (`"The red mug. On the left."` →
    `"the red mug;on the left."`)."""
    text = expression[:-1] if expression.endswith(".") else expression
    return text.lower().replace(". ", ";").strip() + "."


@dataclass(frozen=True)
class Detection:
    """A frame's most confident Grounding DINO box, in frame pixels (x0, y0, x1, y1)."""

    frame: int
    score: float
    box: tuple[float, float, float, float]


def clip_box(box: Sequence[float], height: int, width: int) -> tuple[float, float, float, float]:
    """The box inside the frame (Grounding DINO's boxes may reach past the edges)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width),
            min(max(y1, 0.0), height))


def choose_key_frame(detections: Iterable[Detection | None], key_frame: str) -> Detection | None:
    """The detection SAM2 starts from. `detections` is consumed lazily: "first" stops at the first
    frame with one (so its detector need not score the rest), "best" keeps the most confident,
    the earliest among equals (a later frame must beat it, as in the official code)."""
    best: Detection | None = None
    for detection in detections:
        if detection is None:
            continue
        if key_frame == "first":
            return detection
        if best is None or detection.score > best.score:
            best = detection
    return best


def propagation_order(key: int, count: int) -> list[int]:
    """The frames in the order SAM2 segments them: the key frame back to the first, then the
    frames after the key frame to the last. Each frame once."""
    return [*range(key, -1, -1), *range(key + 1, count)]


class ReadAhead:
    """Frames read in a planned order on a background thread, a few ahead of the model (JPEG
    decoding releases the GIL, so it overlaps the device's work). A frame asked for out of order
    is read there and then; only `depth` frames are ever held."""

    def __init__(self, frames: Frames, order: Sequence[int], pool: ThreadPoolExecutor, depth: int = 4) -> None:
        self.frames = frames
        self.order = list(order)
        self.pool = pool
        self.depth = depth
        self.next = 0  # position in `order` of the next frame expected
        self.pending: list[tuple[int, Future[np.ndarray]]] = []
        self._fill()

    def _fill(self) -> None:
        while len(self.pending) < self.depth and self.next + len(self.pending) < len(self.order):
            index = self.order[self.next + len(self.pending)]
            self.pending.append((index, self.pool.submit(self.frames.read, index)))

    def get(self, index: int) -> np.ndarray:
        if self.pending and self.pending[0][0] == index:
            _, future = self.pending.pop(0)
            self.next += 1
            self._fill()
            return future.result()
        return self.frames.read(index)

    def close(self) -> None:
        for _, future in self.pending:
            future.cancel()
        self.pending.clear()


class DinoDetector:
    """Grounding DINO on every frame of a job, in batches: each frame's best box, or None."""

    def __init__(self, model: Any, tokenizer: Any, spec: inputs.DinoInputSpec, *, device: str, batch_size: int,
                 box_threshold: float, pool: ThreadPoolExecutor) -> None:
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        self.device, self.batch_size, self.box_threshold, self.pool = device, batch_size, box_threshold, pool

    def detect(self, text: str, frames: Frames) -> Iterator[Detection | None]:
        import torch

        limit = int(getattr(self.model.config, "max_text_len", 256))
        tokens = self.tokenizer([text], return_tensors="pt", truncation=True, max_length=limit)
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        reader = ReadAhead(frames, range(len(frames)), self.pool, depth=2 * self.batch_size)
        try:
            for start in range(0, len(frames), self.batch_size):
                images = [reader.get(i) for i in range(start, min(len(frames), start + self.batch_size))]
                pixels, pixel_mask = inputs.dino_pixels(images, self.spec, self.device)
                batch = {k: v.expand(len(images), -1) for k, v in tokens.items()}
                with torch.inference_mode():
                    out = self.model(pixel_values=pixels, pixel_mask=pixel_mask, **batch)
                    # A box's score is its most probable text token (padding tokens score 0).
                    scores = out.logits.sigmoid().amax(dim=-1)
                    best_score, best_query = scores.max(dim=-1)
                    boxes = out.pred_boxes[torch.arange(len(images), device=scores.device), best_query]
                for offset, (score, box) in enumerate(zip(best_score.tolist(), boxes.float().cpu().numpy())):
                    yield self._detection(start + offset, score, box, images[offset].shape)
        finally:
            reader.close()

    def _detection(self, frame: int, score: float, box: np.ndarray, shape: tuple[int, ...]) -> Detection | None:
        if not score > self.box_threshold:
            return None
        height, width = shape[0], shape[1]
        cx, cy, w, h = (float(v) for v in box)  # centre and size, relative to the frame
        corners = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        return Detection(frame, score, clip_box(corners, height, width))


class _DeviceFrames(Mapping[int, Any]):
    """The video as SAM2's inference session sees it (its `processed_frames`): a frame is read and
    preprocessed on the device when the model asks for it, never stored."""

    def __init__(self, reader: ReadAhead, count: int, size: int, device: str) -> None:
        self.reader, self.count, self.size, self.device = reader, count, size, device

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.count))

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < self.count:
            raise KeyError(index)
        return inputs.sam2_pixels(self.reader.get(index), self.size, self.device)


class Sam2Tracker:
    """SAM 2.1 video from a key-frame box: backward to the first frame, then forward to the last."""

    def __init__(self, model: Any, *, device: str, pool: ThreadPoolExecutor, prune: bool = True) -> None:
        self.model, self.device, self.pool, self.prune = model, device, pool, prune
        config = model.config
        self.size = int(config.image_size if isinstance(config.image_size, int) else config.image_size[0])
        # How far back (or ahead, going backward) SAM2 ever reads a tracked frame's outputs: its
        # mask memories and its object pointers. Older outputs are dropped as it goes.
        self.lookback = max(int(config.num_maskmem), int(config.max_object_pointers_in_encoder)) + 1

    def track(self, frames: Frames, detection: Detection) -> Iterator[tuple[int, np.ndarray]]:
        """(frame index, boolean mask of the frame's size) for every frame, in propagation order."""
        import torch
        from transformers import Sam2VideoInferenceSession

        key, count = detection.frame, len(frames)
        first = frames.read(key)
        height, width = int(first.shape[0]), int(first.shape[1])
        # The frames the model asks for: the key frame, back to 0, the key frame again, on to the end.
        planned = [*range(key, -1, -1), *range(key, count)] if key > 0 else list(range(count))
        reader = ReadAhead(frames, planned, self.pool)
        session = Sam2VideoInferenceSession(video_height=height, video_width=width, inference_device=self.device,
                                            inference_state_device=self.device, video_storage_device=self.device,
                                            dtype=torch.float32)  # the default is the string "float32"
        session.processed_frames = _DeviceFrames(reader, count, self.size, self.device)
        prompt = inputs.sam2_box_prompt(detection.box, height, width, self.size, self.device)
        seen: set[int] = set()
        try:
            for reverse in ((True, False) if key > 0 else (False,)):
                session.reset_tracking_data()  # each direction from the prompt alone, as the official code
                session.add_point_inputs(session.obj_id_to_idx(1), key, prompt)
                session.obj_with_new_inputs = [1]
                with torch.inference_mode():
                    for out in self.model.propagate_in_video_iterator(session, start_frame_idx=key, reverse=reverse):
                        index = int(out.frame_idx)
                        if self.prune:
                            self._forget(session, index + (self.lookback if reverse else -self.lookback))
                        if index in seen:  # the key frame, segmented by the backward pass
                            continue
                        seen.add(index)
                        yield index, inputs.frame_mask(out.pred_masks[0], self.size, height, width)
        finally:
            reader.close()
            session.reset_inference_session()

    @staticmethod
    def _forget(session: Any, index: int) -> None:
        for outputs in session.output_dict_per_obj.values():
            outputs["non_cond_frame_outputs"].pop(index, None)


class GroundedSam2:
    """The loaded runner: `predict` gives each non-empty mask of a job, `timings` where time went."""

    def __init__(self, detector: Any, tracker: Any, *, key_frame: str, pool: ThreadPoolExecutor | None = None) -> None:
        if key_frame not in KEY_FRAMES:
            raise ValueError(f"key_frame is one of {KEY_FRAMES}, not {key_frame!r}")
        self.detector, self.tracker, self.key_frame, self.pool = detector, tracker, key_frame, pool
        self.timings = {"detection": 0.0, "propagation": 0.0}
        self.key_frames: dict[str, Detection | None] = {}  # relative path → the detection used

    def predict(self, job: Job, frames: Frames) -> Iterator[tuple[str, np.ndarray]]:
        tick = time.perf_counter()
        detection = choose_key_frame(self.detector.detect(caption(job.expression), frames), self.key_frame)
        self.timings["detection"] += time.perf_counter() - tick
        self.key_frames[job.relative_path] = detection
        if detection is None:
            return
        tick = time.perf_counter()
        for index, mask in self.tracker.track(frames, detection):
            self.timings["propagation"] += time.perf_counter() - tick
            if mask.any():
                yield frames.names[index], mask
            tick = time.perf_counter()
        self.timings["propagation"] += time.perf_counter() - tick

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


# --- loading -----------------------------------------------------------------------------------

def _number(options: Mapping[str, str], name: str, default: str, parse: Callable[[str], Any],
            check: Callable[[Any], bool], what: str) -> Any:
    text = options.get(name, default)
    try:
        value = parse(text)
        if not check(value):
            raise ValueError
    except ValueError:
        raise RunnerError(f"grounded-sam2: {name} is {what}, not {text!r}") from None
    return value


def _folder(weights: Path, name: str) -> Path:
    folder = weights / name
    download = (f"hf download {_DOWNLOADS[name]} --local-dir {folder} "
                f"(docs/runners.md lists the other models that fit)")
    if not folder.is_dir():
        raise RunnerError(f"the weights folder {weights} has no {name}/ sub-folder: {download}")
    if not (folder / "config.json").is_file():
        raise RunnerError(f"{folder} has no config.json (not a transformers model folder): {download}")
    return folder


@contextmanager
def _offline() -> Iterator[None]:
    """No hub access while loading: the weights come from the local folder only."""
    saved = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({name: "1" for name in saved})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load(*, weights: Path | None, device: str, options: Mapping[str, str], key_frame: str = "best") -> GroundedSam2:
    """Grounding DINO and SAM 2.1 video from `<weights>/grounding-dino/` and `<weights>/sam2/`."""
    box_threshold = _number(options, "box_threshold", "0.35", float, lambda v: 0 <= v < 1, "a score between 0 and 1")
    # The text threshold picks which words label a box; it never decides whether a box counts, so
    # the masks do not depend on it. Checked, for the paper's command line.
    _number(options, "text_threshold", "0.35", float, lambda v: 0 <= v < 1, "a score between 0 and 1")
    batch_size = _number(options, "batch_size", "8", int, lambda v: v >= 1, "a whole number of frames, at least 1")
    if weights is None:
        raise RunnerError("grounded-sam2 needs its weights: pass --weights DIR (docs/runners.md says how to "
                          "download them)")
    if not Path(weights).is_dir():
        raise RunnerError(f"the weights folder {weights} does not exist (docs/runners.md says how to download "
                          f"grounded-sam2's weights)")
    dino_folder, sam2_folder = _folder(Path(weights), DINO_FOLDER), _folder(Path(weights), SAM2_FOLDER)
    with _offline():
        import torch
        from transformers import AutoTokenizer, GroundingDinoForObjectDetection, Sam2VideoModel
        from transformers.utils import logging as transformers_logging

        # Its "Loading weights" bars would tear through the run's own progress bar (and worker logs).
        transformers_logging.disable_progress_bar()

        if device == "cuda" and not torch.cuda.is_available():
            raise RunnerError("grounded-sam2: CUDA was asked for but this machine has no GPU (or torch has no CUDA "
                              "support): run with --device cpu")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(dino_folder), local_files_only=True)
            dino = GroundingDinoForObjectDetection.from_pretrained(str(dino_folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot load Grounding DINO from {dino_folder} ({exc})") from None
        try:
            sam2 = Sam2VideoModel.from_pretrained(str(sam2_folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot load SAM 2.1 video from {sam2_folder} ({exc})") from None
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gsam2-frames")
    detector = DinoDetector(dino.to(device).eval(), tokenizer, inputs.dino_input_spec(dino_folder), device=device,
                            batch_size=batch_size, box_threshold=box_threshold, pool=pool)
    tracker = Sam2Tracker(sam2.to(device).eval(), device=device, pool=pool)
    return GroundedSam2(detector, tracker, key_frame=key_frame, pool=pool)
