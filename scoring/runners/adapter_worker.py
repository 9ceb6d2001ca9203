"""The child side of the Sa2VA and VideoLISA adapters: run with the model environment's own Python.

    <model env>/bin/python adapter_worker.py --model sa2va|videolisa --weights DIR --device cuda
                                             [--options JSON]

Those models pin transformers versions of their own (and Sa2VA ships its code with its weights),
so they cannot be imported beside our package: the parent (`scoring/runners/adapters.py`) starts
this file as a script in the model's environment and talks to it over pipes. This file therefore
imports only the standard library at module level and, once asked to load, numpy, PIL, torch,
transformers and the model's own code; never the rest of `scoring`.

The protocol, one JSON object per line (stdout carries nothing else: anything the model prints,
and C-level output too, is redirected to stderr):
  child  → {"type": "hello", "torch": "2.x" | null, "transformers": ..., "numpy": ..., "PIL": ...,
            "cuda": bool, "python": "3.x.y"}
  parent → {"type": "load"}                         child → {"type": "ready"}
  parent → {"type": "predict", "frames": [jpg paths in order], "names": [frame names],
            "expression": "...", "chunk": N}
  child  → {"type": "mask", "frame": name, "size": [h, w], "runs": [zeros, ones, ...] | null}
            one per frame, in order (runs: uncompressed column-major COCO counts, null when empty),
            then {"type": "done", "calls": model calls}
  parent → {"type": "quit"} (or end of input)
On any failure the child prints the traceback to stderr, answers {"type": "error", "message": ...}
and exits 1.

What each model does follows the official EgoMask runners (LaVi-Lab/EgoMask,
evaluation/sa2va/inference_egomask.py and evaluation/videolisa/inference_egomask.py); where this
differs, the comment says so and why.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

PROTOCOL = 1
SA2VA_KEY_FRAMES = 5  # Sa2VA's remote code feeds the first 5 frames of the video it is given to its MLLM
VIDEOLISA_CLASS = "model.VideoLISA:VideoLISAForCausalLM"
VIDEOLISA_CONV = "phi3_instruct"  # the official runner's --conv_type
VIDEOLISA_SAM_SIZE = 1024  # the official runner's --image_size
SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)


# --- prompts and frame choices (pure: tested in-process) -------------------------------------

def simple_process(expression: str) -> str:
    """The expression as the official runners put it in the prompt: stripped, without a final
    full stop, lower case. (The official code fails on an empty expression; this does not.)"""
    text = expression.strip()
    if text.endswith("."):
        text = text[:-1]
    return text.lower()


def sa2va_prompt(expression: str) -> str:
    """Sa2VA's prompt, exactly as the official EgoMask runner writes it."""
    return f"<image> Please segment the {simple_process(expression)} in this image."


def videolisa_question(expression: str) -> str:
    """VideoLISA's question, before the image token and the conversation template are added."""
    return f"Please segment the {simple_process(expression)} in this image."


def chunks(n_frames: int, chunk: int) -> list[range]:
    """The frame ranges of one expression's model calls: the whole video when `chunk` is 0 (the
    official runners always pass the whole video), else consecutive runs of `chunk` frames."""
    if chunk <= 0 or chunk >= n_frames:
        return [range(n_frames)]
    return [range(start, min(start + chunk, n_frames)) for start in range(0, n_frames, chunk)]


def sa2va_call_frames(n_frames: int, part: range) -> list[int]:
    """The frames of one Sa2VA call for the frames `part`: the video's key frames first, then the
    rest of `part`. Sa2VA grounds the expression on the first frames of what it is given and SAM2
    propagates from there, so every chunk starts with the video's own first frames: the grounding
    is the one a single whole-video call would make, and only SAM2's memory of the frames before
    the chunk is lost (the price of bounded memory on long videos)."""
    keys = list(range(min(SA2VA_KEY_FRAMES, n_frames)))
    return keys + [i for i in part if i >= len(keys)]


def videolisa_sparse_indices(n_frames: int, n_sparse: int) -> list[int]:
    """The official runner's sparse frames (for the MLLM): the middle of `n_sparse` equal parts of
    the video; a video shorter than that repeats every frame, then adds evenly spread ones."""

    def middles(total: int, count: int) -> list[int]:
        edges = [int(v) for v in _linspace_int(total, count)]
        return [(edges[k] + edges[k + 1] - 1) // 2 for k in range(count)]

    if n_frames > n_sparse:
        return sorted(middles(n_frames, n_sparse))
    repeat, extra = divmod(n_sparse, n_frames)
    return sorted(list(range(n_frames)) * repeat + middles(n_frames, extra))


def videolisa_dense_indices(n_sparse: int, n_dense: int) -> list[int]:
    """Positions, among the sparse frames, of the frames the MLLM sees densely (official runner)."""
    edges = [int(v) for v in _linspace_int(n_sparse - 1, n_dense)]
    return [(edges[k] + edges[k + 1] - 1) // 2 for k in range(n_dense)]


def _linspace_int(stop: int, count: int) -> list[int]:
    """`np.linspace(0, stop, count + 1).astype(int)`, the official runner's interval edges."""
    import numpy as np

    return [int(v) for v in np.linspace(start=0, stop=stop, num=count + 1).astype(int)]


def runs_of(mask: Any) -> list[int] | None:
    """Uncompressed COCO counts (column-major, zeros first) of a 2-D boolean mask; None if empty."""
    import numpy as np

    flat = np.ascontiguousarray(np.asarray(mask, dtype=bool).T).reshape(-1)
    if not flat.any():
        return None
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def to_frame_size(mask: Any, height: int, width: int) -> Any:
    """A model's mask as a boolean (height, width) array: logits and probabilities > 0 count (the
    official runners threshold VideoLISA's logits at 0; Sa2VA's are already boolean); a mask of
    another size is resized to the frame's, nearest neighbour."""
    import numpy as np

    if hasattr(mask, "detach"):  # a torch tensor, possibly on the GPU: move one frame at a time
        mask = mask.detach().float().cpu().numpy()
    array = np.asarray(mask)
    array = array > 0 if array.dtype != bool else array
    if array.ndim != 2:
        raise ValueError(f"the model gave a mask of shape {array.shape}, not (H, W)")
    if array.shape != (height, width):
        from PIL import Image

        resized = Image.fromarray(array.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
        array = np.asarray(resized) > 127
    return array


# --- the models --------------------------------------------------------------------------------

def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def _dtype_kwarg(value: Any) -> dict[str, Any]:
    """`dtype=` on transformers 5, `torch_dtype=` before it (the model environments pin 4.x)."""
    return {"dtype": value} if _transformers_major() >= 5 else {"torch_dtype": value}


def _read_frames(paths: Sequence[str]) -> list[Any]:
    from PIL import Image

    frames = []
    for path in paths:
        with Image.open(path) as image:
            frames.append(image.convert("RGB"))
    return frames


class Sa2VA:
    """ByteDance Sa2VA through its own remote code: `predict_forward(video=frames, text=prompt,
    tokenizer=tok)`, masks from `prediction_masks[0]` when the answer holds "[SEG]"."""

    def __init__(self, weights: str, device: str, options: dict[str, str]) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        # The official runner loads AutoModelForCausalLM with dtype "auto" and device_map="auto";
        # Sa2VA maps AutoModel and AutoModelForCausalLM to the same class. One worker drives one
        # GPU (the Celery worker's CUDA_VISIBLE_DEVICES), so the model is moved there whole.
        self.model = AutoModel.from_pretrained(weights, trust_remote_code=True, local_files_only=True,
                                               **_dtype_kwarg("auto")).eval().to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(weights, trust_remote_code=True, local_files_only=True)
        self.torch = torch
        self.device = device

    def predict(self, paths: Sequence[str], expression: str, chunk: int) -> Iterator[tuple[int, Any]]:
        prompt = sa2va_prompt(expression)
        for part in chunks(len(paths), chunk):
            order = sa2va_call_frames(len(paths), part)
            frames = _read_frames([paths[i] for i in order])
            with self.torch.no_grad():
                result = self.model.predict_forward(video=frames, text=prompt, tokenizer=self.tokenizer)
            masks = result["prediction_masks"][0] if "[SEG]" in result["prediction"] else None
            if masks is not None and len(masks) != len(order):
                raise ValueError(f"Sa2VA gave {len(masks)} masks for {len(order)} frames")
            wanted = set(part)
            for position, index in enumerate(order):
                if index in wanted:
                    yield index, None if masks is None else masks[position]
            del frames, masks, result
            if self.device.startswith("cuda"):
                self.torch.cuda.empty_cache()


class VideoLISA:
    """VideoLISA through its repository's `VideoLISAForCausalLM.evaluate(...)`, prepared as the
    official runner does: the phi3_instruct conversation with "Sure, [SEG]." as the answer, CLIP
    on the sparse frames of the whole video (dense ones among them), SAM on every frame."""

    def __init__(self, weights: str, device: str, options: dict[str, str]) -> None:
        import torch
        from transformers import AutoTokenizer, CLIPImageProcessor

        code = options.get("code")
        if code:
            sys.path.insert(0, code)
        module_name, _, class_name = options.get("model_class", VIDEOLISA_CLASS).partition(":")
        model_class = getattr(importlib.import_module(module_name), class_name)
        package = module_name.split(".")[0]
        self.conversation = importlib.import_module(f"{package}.llava.conversation")
        self.tokenizer_image_token = importlib.import_module(f"{package}.llava.mm_utils").tokenizer_image_token
        transforms = importlib.import_module(f"{package}.segment_anything.utils.transforms")
        constants = importlib.import_module("utils.utils")
        self.image_token = constants.DEFAULT_IMAGE_TOKEN
        self.n_sparse = int(options.get("frames_sparse", "32"))  # scripts/eval_videolisa.sh: 32 and 4
        self.n_dense = int(options.get("frames_dense", "4"))
        vision_tower = options["vision_tower"]

        tokenizer = AutoTokenizer.from_pretrained(weights, model_max_length=512, padding_side="right",
                                                  use_fast=False, local_files_only=True)
        tokenizer.pad_token = tokenizer.unk_token
        seg_token_idx = tokenizer("[SEG]", add_special_tokens=False).input_ids[-1]
        dtype = torch.bfloat16  # the official runner supports bf16 only
        extra: dict[str, Any] = {}
        if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
            extra["attn_implementation"] = "flash_attention_2"  # as the official runner asks
        if _transformers_major() < 5:
            extra["low_cpu_mem_usage"] = True  # as the official runner asks; transformers 5 always does
        model = model_class.from_pretrained(weights, vision_tower=vision_tower, seg_token_idx=seg_token_idx,
                                            local_files_only=True, empty_init=False, **_dtype_kwarg(dtype), **extra)
        model.config.eos_token_id = tokenizer.eos_token_id
        model.config.bos_token_id = tokenizer.bos_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
        model.get_model().initialize_vision_modules(model.get_model().config)
        model = model.to(dtype=dtype, device=device)
        model.get_model().get_vision_tower().to(dtype=dtype, device=device)
        model.eval()
        self.model, self.tokenizer, self.torch, self.device, self.dtype = model, tokenizer, torch, device, dtype
        self.clip = CLIPImageProcessor.from_pretrained(vision_tower, local_files_only=True)
        self.resize = transforms.ResizeLongestSide(VIDEOLISA_SAM_SIZE)

    def _input_ids(self, expression: str) -> Any:
        conv = self.conversation.conv_templates[VIDEOLISA_CONV].copy()
        conv.messages = []
        conv.append_message(conv.roles[0], self.image_token + "\n" + videolisa_question(expression))
        conv.append_message(conv.roles[1], "Sure, [SEG].")
        ids = self.tokenizer_image_token(conv.get_prompt(), self.tokenizer, return_tensors="pt")
        return ids.unsqueeze(0).to(self.device)

    def _sam_input(self, rgb: Any) -> tuple[Any, tuple[int, int]]:
        """A frame as SAM takes it: longest side 1024, normalised, padded to 1024 x 1024."""
        torch = self.torch
        resized = self.resize.apply_image(rgb)
        x = torch.from_numpy(resized).permute(2, 0, 1).contiguous().float()
        x = (x - torch.tensor(SAM_MEAN).view(-1, 1, 1)) / torch.tensor(SAM_STD).view(-1, 1, 1)
        h, w = x.shape[-2:]
        x = torch.nn.functional.pad(x, (0, VIDEOLISA_SAM_SIZE - w, 0, VIDEOLISA_SAM_SIZE - h))
        return x.unsqueeze(0).to(device=self.device, dtype=self.dtype), (int(resized.shape[0]), int(resized.shape[1]))

    def predict(self, paths: Sequence[str], expression: str, chunk: int) -> Iterator[tuple[int, Any]]:
        import numpy as np

        torch = self.torch
        sparse = videolisa_sparse_indices(len(paths), self.n_sparse)
        dense = videolisa_dense_indices(self.n_sparse, self.n_dense)
        clips = []
        for index in sparse:
            rgb = np.asarray(_read_frames([paths[index]])[0])
            pixels = self.clip.preprocess(rgb, return_tensors="pt")["pixel_values"][0].unsqueeze(0)
            clips.append(pixels.to(device=self.device, dtype=self.dtype))
        image_clip = torch.stack(clips, dim=1)
        input_ids = self._input_ids(expression)
        # The official runner passes every frame to SAM in one call. SAM decodes each frame on its
        # own from the one [SEG] embedding, which depends only on the sparse frames and the prompt,
        # so calling it chunk by chunk (the same sparse frames each time) gives the same masks with
        # bounded memory, at the cost of the MLLM pass once per chunk.
        for part in chunks(len(paths), chunk):
            sam, resize_list, original_size_list = [], [], []
            for index in part:
                rgb = np.asarray(_read_frames([paths[index]])[0])
                image, resized = self._sam_input(rgb)
                sam.append(image)
                resize_list, original_size_list = [resized], [rgb.shape[:2]]
            with torch.no_grad():
                _, pred_masks = self.model.evaluate(image_clip, torch.stack(sam, dim=1), input_ids, resize_list,
                                                    original_size_list, dense_indices=[dense],
                                                    num_frames_sparse=self.n_sparse, num_frames_dense=self.n_dense)
            video = pred_masks[0] if pred_masks else None
            if video is not None and video.shape[0] == 0:
                video = None  # the official runner writes nothing for such an expression
            if video is not None and video.shape[0] != len(part):
                raise ValueError(f"VideoLISA gave {video.shape[0]} masks for {len(part)} frames")
            for position, index in enumerate(part):
                yield index, None if video is None else video[position]
            del sam, pred_masks, video
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()


MODELS = {"sa2va": Sa2VA, "videolisa": VideoLISA}


# --- the conversation with the parent ----------------------------------------------------------

def _versions() -> dict[str, Any]:
    found: dict[str, Any] = {"type": "hello", "protocol": PROTOCOL, "python": sys.version.split()[0],
                             "executable": sys.executable, "cuda": False}
    for name, module in (("numpy", "numpy"), ("PIL", "PIL"), ("torch", "torch"), ("transformers", "transformers")):
        try:
            found[name] = getattr(importlib.import_module(module), "__version__", "unknown")
        except Exception as exc:  # a broken install is as missing as an absent one
            found[name] = None
            print(f"cannot import {module}: {exc!r}", file=sys.stderr)
    if found["torch"] is not None:
        import torch

        found["cuda"] = bool(torch.cuda.is_available())
    return found


def _send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


def _answer(out: TextIO, model: Any, request: dict[str, Any]) -> None:
    from PIL import Image

    paths, names = request["frames"], request["names"]
    sizes: dict[int, tuple[int, int]] = {}
    answered = 0
    for index, mask in model.predict(paths, request["expression"], int(request.get("chunk", 0))):
        if index not in sizes:
            with Image.open(paths[index]) as image:
                sizes[index] = (image.height, image.width)
        height, width = sizes[index]
        runs = None if mask is None else runs_of(to_frame_size(mask, height, width))
        _send(out, {"type": "mask", "frame": names[index], "size": [height, width], "runs": runs})
        answered += 1
    if answered != len(paths):
        raise ValueError(f"the model answered for {answered} of the {len(paths)} frames")
    _send(out, {"type": "done", "calls": len(chunks(len(paths), int(request.get("chunk", 0))))})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--options", default="{}", help="JSON object of the runner's options")
    args = parser.parse_args(argv)
    options = {str(k): str(v) for k, v in json.loads(args.options).items()}

    # The protocol keeps the real stdout; everything else printing there (the model's own code,
    # C extensions) goes to stderr instead, so that no stray line can break the protocol.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    try:
        hello = _versions()
        _send(out, hello)
        model = None
        for line in sys.stdin:
            request = json.loads(line)
            kind = request.get("type")
            if kind == "quit":
                break
            if kind == "load":
                model = MODELS[args.model](args.weights, args.device, options)
                _send(out, {"type": "ready"})
            elif kind == "predict":
                if model is None:
                    raise RuntimeError("asked to predict before loading")
                _answer(out, model, request)
            else:
                raise RuntimeError(f"unknown request {kind!r}")
        return 0
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        with contextlib.suppress(OSError):  # the parent may have gone
            _send(out, {"type": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
